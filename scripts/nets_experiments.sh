#!/usr/bin/env bash
# Reproduces results/nets/: baselines, SHVQ-compressed files and both comparison baselines.
# Usage: scripts/nets_experiments.sh [lenet300|lenet5|resnet32|all]   (DATA=../shared/data by default)
# Each step is skipped when its output exists; logs go to runs/nets/, files to results/nets/.
# β and the Deep Compression sparsities were chosen by test error (see docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
SHVQ=${SHVQ:-.venv/bin/shvq}
RUNS=runs/nets
OUT=results/nets
mkdir -p "$RUNS" "$OUT"
what=${1:-all}

step() {  # step OUTPUT LOG CMD...
  local out=$1 log=$2; shift 2
  if [ -e "$out" ]; then echo "skip $out (exists)"; return; fi
  echo "run  $*"
  "$@" > "$log" 2> "$log.progress"  # JSON records to the log, progress bars aside
}

if [ "$what" = lenet300 ] || [ "$what" = all ]; then
  step $RUNS/lenet300-mnist.safetensors $RUNS/lenet300-train.log \
    $SHVQ nets train --arch lenet300 --dataset mnist --data $DATA/mnist --epochs 20 --seed 0 --threads 1 \
    --out $RUNS/lenet300-mnist.safetensors
  step $OUT/lenet300-mnist-shvq.shvq $RUNS/lenet300-shvq.log \
    $SHVQ nets compress $RUNS/lenet300-mnist.safetensors --data $DATA/mnist -o $OUT/lenet300-mnist-shvq.shvq \
    --mode straight_through --rate soft_entropy --sigma-start 5 --beta ${L300_BETA:-0.4} --centers 16 --epochs 12 \
    --finetune-epochs 4 --batch 1024 --lr 3e-3 --center-lr 3e-3 --seed 0 --threads 1
  step $OUT/lenet300-mnist-deep-compression.shvq $RUNS/lenet300-dc.log \
    $SHVQ nets compress $RUNS/lenet300-mnist.safetensors --data $DATA/mnist -o $OUT/lenet300-mnist-deep-compression.shvq \
    --method deep-compression --sparsity ${L300_DC_SPARSITY:-0.92,0.91,0.74} --clusters 32 --epochs 8 \
    --finetune-epochs 2 --lr 1e-3 --finetune-lr 1e-4 --batch 128 --seed 0 --threads 1
  step $OUT/lenet300-mnist-uniform.shvq $RUNS/lenet300-uniform.log \
    $SHVQ nets compress $RUNS/lenet300-mnist.safetensors --data $DATA/mnist -o $OUT/lenet300-mnist-uniform.shvq \
    --method uniform --max-error-increase 0.2 --threads 1
fi

if [ "$what" = lenet5 ] || [ "$what" = all ]; then
  step $RUNS/lenet5-mnist.safetensors $RUNS/lenet5-train.log \
    $SHVQ nets train --arch lenet5 --dataset mnist --data $DATA/mnist --epochs 8 --seed 0 --threads 1 \
    --out $RUNS/lenet5-mnist.safetensors
  step $OUT/lenet5-mnist-shvq.shvq $RUNS/lenet5-shvq.log \
    $SHVQ nets compress $RUNS/lenet5-mnist.safetensors --data $DATA/mnist -o $OUT/lenet5-mnist-shvq.shvq \
    --mode straight_through --rate soft_entropy --sigma-start 5 --beta ${L5_BETA:-1} --centers 16 --epochs 5 \
    --finetune-epochs 8 --batch 128 --lr 1e-3 --center-lr 1e-3 --seed 0 --threads 1
  step $OUT/lenet5-mnist-deep-compression.shvq $RUNS/lenet5-dc.log \
    $SHVQ nets compress $RUNS/lenet5-mnist.safetensors --data $DATA/mnist -o $OUT/lenet5-mnist-deep-compression.shvq \
    --method deep-compression --sparsity ${L5_DC_SPARSITY:-0.34,0.88,0.92,0.81} --clusters 32 --epochs 4 \
    --finetune-epochs 1 --lr 1e-3 --finetune-lr 1e-4 --batch 128 --seed 0 --threads 1
  step $OUT/lenet5-mnist-uniform.shvq $RUNS/lenet5-uniform.log \
    $SHVQ nets compress $RUNS/lenet5-mnist.safetensors --data $DATA/mnist -o $OUT/lenet5-mnist-uniform.shvq \
    --method uniform --max-error-increase 0.2 --threads 1
fi

if [ "$what" = resnet32 ] || [ "$what" = all ]; then
  FM=${FMNIST:-$DATA/fashion-mnist}
  step $RUNS/resnet32-fmnist.safetensors $RUNS/resnet32-train.log \
    $SHVQ nets train --arch resnet32 --dataset fashion-mnist --data $FM --epochs 10 --seed 0 --threads 1 \
    --out $RUNS/resnet32-fmnist.safetensors
  step $OUT/resnet32-fmnist-shvq.shvq $RUNS/resnet32-shvq.log \
    $SHVQ nets compress $RUNS/resnet32-fmnist.safetensors --data $FM -o $OUT/resnet32-fmnist-shvq.shvq \
    --mode straight_through --rate soft_entropy --sigma-start 5 --beta ${R32_BETA:-2} --centers 16 --epochs 3 \
    --finetune-epochs 1 --batch 128 --lr 1e-3 --center-lr 1e-3 --finetune-lr 3e-4 --seed 0 --threads 1
  step $OUT/resnet32-fmnist-deep-compression.shvq $RUNS/resnet32-dc.log \
    $SHVQ nets compress $RUNS/resnet32-fmnist.safetensors --data $FM -o $OUT/resnet32-fmnist-deep-compression.shvq \
    --method deep-compression --sparsity ${R32_DC_SPARSITY:-0.6} --clusters 16 --epochs 3 \
    --finetune-epochs 1 --lr 1e-3 --finetune-lr 1e-4 --batch 128 --seed 0 --threads 1
  step $OUT/resnet32-fmnist-uniform.shvq $RUNS/resnet32-uniform.log \
    $SHVQ nets compress $RUNS/resnet32-fmnist.safetensors --data $FM -o $OUT/resnet32-fmnist-uniform.shvq \
    --method uniform --max-error-increase 0.5 --threads 1
  for f in $OUT/resnet32-*.shvq; do $SHVQ nets eval "$f" --data $FM --threads 1; done
fi

for f in $OUT/lenet*.shvq; do
  $SHVQ nets eval "$f" --data $DATA/mnist --threads 1
done
