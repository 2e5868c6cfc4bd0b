"""``shvq nets ...``: train, compress and evaluate networks."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DATASETS = ("mnist", "fashion-mnist", "cifar10")
ARCH_NAMES = ("lenet300", "lenet5", "resnet20", "resnet32")  # == shvq.nets.models.ARCHITECTURES (tested)
METHODS = ("shvq", "deep-compression", "uniform")


DEVICE_HELP = "auto (CUDA if a GPU is visible, else CPU), cpu, cuda or cuda:N"
"""What ``--device`` accepts (:data:`shvq.device.DEVICE_HELP`, repeated: that module imports PyTorch)."""


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _device(args: argparse.Namespace) -> torch.device:
    """The ``torch.device`` of ``--device`` (a one-line error for one this machine lacks)."""
    from shvq.device import resolve_device

    return resolve_device(args.device)


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from shvq.nets.checkpoint import save_checkpoint
    from shvq.nets.data import load_dataset
    from shvq.nets.models import build_model, count_parameters
    from shvq.nets.train import evaluate, train_classifier

    _threads(args.threads)
    dev = _device(args)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists (use --force to overwrite)")
    ds = load_dataset(args.dataset, args.data)
    torch.manual_seed(args.seed)
    model = build_model(args.arch, in_channels=ds.in_channels, num_classes=ds.num_classes, image_size=ds.image_size)
    model.to(dev)
    train_classifier(
        model, ds.train, epochs=args.epochs, lr=args.lr, batch_size=args.batch, weight_decay=args.weight_decay,
        seed=args.seed, log=lambda r: print(json.dumps(r)), amp=args.amp,
    )
    err = evaluate(model, ds.test)
    meta = {
        "arch": args.arch, "dataset": args.dataset, "in_channels": ds.in_channels, "num_classes": ds.num_classes,
        "image_size": ds.image_size, "test_error": err, "seed": args.seed, "epochs": args.epochs,
    }
    save_checkpoint(model, out, meta)
    print(json.dumps({"test_error": err, "params": count_parameters(model), "out": str(out)}))
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    import torch

    from shvq.fileio import refuse_overwriting_inputs, write_atomic
    from shvq.nets.checkpoint import load_checkpoint
    from shvq.nets.data import load_dataset
    from shvq.nets.fileformat import save_compressed
    from shvq.nets.models import count_parameters
    from shvq.nets.train import CompressConfig, compress_network, evaluate

    _threads(args.threads)
    dev = _device(args)
    out = Path(args.output)
    report_path = out.with_suffix(".json")
    if report_path == out:
        raise ValueError(f"{out}: the compressed file must not end in .json (its report goes to OUT with .json)")
    refuse_overwriting_inputs([out, report_path], [args.model])
    for path in (out, report_path):
        if path.exists() and not args.force:
            raise FileExistsError(f"{path} exists (use --force to overwrite)")
    if args.amp and args.method == "uniform":
        print("shvq: note: --amp has no effect with --method uniform (it does not train)", file=sys.stderr)
    model, meta = load_checkpoint(args.model)
    model.to(dev)
    ds = load_dataset(meta["dataset"], args.data)
    baseline_err = evaluate(model, ds.test)
    n_params = count_parameters(model)
    torch.manual_seed(args.seed)
    log: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        log.append(row)
        print(json.dumps(row), flush=True)

    coder = "ans"
    settings: dict[str, Any]
    if args.method == "shvq":
        config = CompressConfig(
            num_centers=args.centers, dim=args.dim, shared_codebook=args.shared_codebook, pin_zero=not args.no_pin_zero,
            mode=args.mode, rate=args.rate, beta=args.beta, sigma_start=args.sigma_start, sigma_end=args.sigma_end, epochs=args.epochs,
            finetune_epochs=args.finetune_epochs, lr=args.lr, center_lr=args.center_lr, finetune_lr=args.finetune_lr,
            batch_size=args.batch, finetune_batch_size=args.finetune_batch, seed=args.seed, amp=args.amp,
        )
        settings = config.to_dict()
        qnet = compress_network(model, ds.train, config, log=record)
    elif args.method == "deep-compression":
        from shvq.nets.baselines import deep_compression

        from shvq.nets.models import default_quantized

        coder = "sparse-huffman"
        fracs = [float(v) for v in str(args.sparsity).split(",")]
        layer_names = default_quantized(model)
        if len(fracs) not in (1, len(layer_names)):
            raise ValueError(f"--sparsity takes one value or one per layer ({len(layer_names)}: {', '.join(layer_names)})")
        if any(not 0 <= f < 1 for f in fracs):
            raise ValueError("--sparsity values must be in [0, 1)")
        sparsity: float | dict[str, float] = fracs[0] if len(fracs) == 1 else dict(zip(layer_names, fracs))
        settings = {"sparsity": args.sparsity, "clusters": args.clusters, "prune_epochs": args.epochs,
                    "share_epochs": args.finetune_epochs, "lr": args.lr, "share_lr": args.finetune_lr,
                    "batch_size": args.batch, "seed": args.seed}
        qnet = deep_compression(model, ds.train, sparsity=sparsity, clusters=args.clusters, prune_epochs=args.epochs,
                                share_epochs=args.finetune_epochs, lr=args.lr, share_lr=args.finetune_lr,
                                batch_size=args.batch, seed=args.seed, log=record, amp=args.amp)
    else:
        from shvq.nets.baselines import uniform_quantization

        budget = baseline_err + args.max_error_increase
        lo, hi = 1e-3, 8.0  # step factors (in layer standard deviations): lo meets the budget
        for _ in range(args.search_steps):
            mid = math.sqrt(lo * hi)
            err_mid = evaluate(uniform_quantization(model, mid), ds.test)
            record({"phase": "uniform-search", "step_factor": mid, "test_error": err_mid})
            lo, hi = (mid, hi) if err_mid <= budget else (lo, mid)
        settings = {"step_factor": lo, "max_error_increase": args.max_error_increase}
        qnet = uniform_quantization(model, lo)
    err = evaluate(qnet, ds.test)
    file_meta = {k: meta[k] for k in ("arch", "dataset", "in_channels", "num_classes", "image_size")}
    file_meta["info"] = {"method": args.method, "baseline_test_error": baseline_err, "test_error": err}
    size = save_compressed(qnet, out, file_meta, overwrite=args.force, coder=coder)
    report = {
        "method": args.method, "arch": meta["arch"], "dataset": meta["dataset"], "baseline_test_error": baseline_err,
        "test_error": err, "file_bytes": size, "param_bytes_fp32": 4 * n_params, "ratio": 4 * n_params / size,
        "config": settings, "log": log,
    }
    if coder == "ans":
        report["estimated_index_bytes"] = qnet.weight_bits_estimate() / 8
    write_atomic(report_path, (json.dumps(report, indent=2) + "\n").encode(), overwrite=args.force)
    print(json.dumps({k: v for k, v in report.items() if k not in ("config", "log")}))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from shvq.nets.data import load_dataset
    from shvq.nets.fileformat import load_compressed
    from shvq.nets.models import count_parameters
    from shvq.nets.train import evaluate

    _threads(args.threads)
    dev = _device(args)
    model, doc = load_compressed(args.file)
    model.to(dev)
    ds = load_dataset(str(doc.get("dataset")), args.data)
    size = Path(args.file).stat().st_size
    n_params = count_parameters(model)
    result = {
        "file": str(args.file), "arch": doc.get("arch"), "dataset": doc.get("dataset"),
        "method": (doc.get("info") or {}).get("method"), "test_error": evaluate(model, ds.test),
        "file_bytes": size, "param_bytes_fp32": 4 * n_params, "ratio": 4 * n_params / size,
    }
    print(json.dumps(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    nets = sub.add_parser("nets", help="compress neural networks (train, compress, eval)",
                          description="Train a classifier, compress its weights into a .shvq file, evaluate the file.")
    nsub = nets.add_subparsers(dest="nets_command", metavar="COMMAND")
    nsub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, help="dataset folder (IDX files for MNIST/Fashion-MNIST, CIFAR-10 batches)")
    common.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads")
    common.add_argument("--device", default="auto", help=f"where to compute: {DEVICE_HELP} (default auto)")
    amp_help = ("mixed precision: the network's forward pass under autocast (float16 with loss scaling on CUDA, "
                "bfloat16 on CPU); the weight quantizers and the rate stay float32")

    t = nsub.add_parser("train", parents=[common], help="train an uncompressed baseline (safetensors checkpoint)")
    t.add_argument("--arch", required=True, choices=ARCH_NAMES)
    t.add_argument("--dataset", required=True, choices=DATASETS)
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    t.add_argument("--force", action="store_true", help="overwrite --out")
    t.add_argument("--amp", action="store_true", help=amp_help)
    t.set_defaults(func=_cmd_train)

    c = nsub.add_parser("compress", parents=[common], help="compress a checkpoint into a .shvq file",
                        description="Soft-to-hard quantize the conv/linear weights of a checkpoint, fine-tune, and write "
                                    "entropy-coded indices + codebooks + float16 extras. Writes OUT and OUT's .json report.")
    c.add_argument("model", help="checkpoint from `shvq nets train`")
    c.add_argument("-o", "--output", required=True, help="compressed file (.shvq)")
    c.add_argument("--method", choices=METHODS, default="shvq",
                   help="shvq (default); deep-compression (prune, k-means, Huffman); uniform (post-training uniform "
                        "quantization + entropy coding, step searched to meet --max-error-increase)")
    c.add_argument("--beta", type=float, default=0.05, help="rate weight, per bit per quantized weight (default 0.05)")
    c.add_argument("--centers", type=int, default=32, help="codebook size L (default 32)")
    c.add_argument("--dim", type=int, default=1, help="vector dimension d (default 1)")
    c.add_argument("--shared-codebook", action="store_true", help="one codebook for all layers")
    c.add_argument("--no-pin-zero", action="store_true", help="do not pin a center at zero")
    c.add_argument("--mode", choices=("anneal", "straight_through"), default="anneal")
    c.add_argument("--rate", choices=("soft_entropy", "cross_entropy"), default="soft_entropy",
                   help="rate term: H(q) of the soft histogram (default) or H(p, q)")
    c.add_argument("--sigma-start", type=float, default=10.0)
    c.add_argument("--sigma-end", type=float, default=1e4)
    c.add_argument("--epochs", type=int, default=10, help="rate-penalised epochs (deep-compression: pruned retraining)")
    c.add_argument("--finetune-epochs", type=int, default=3, help="epochs with fixed assignments")
    c.add_argument("--sparsity", default="0.9",
                   help="deep-compression: fraction of weights pruned, one value or a comma list per layer")
    c.add_argument("--clusters", type=int, default=32, help="deep-compression: shared values per layer")
    c.add_argument("--max-error-increase", type=float, default=0.2, help="uniform: allowed test-error increase, points")
    c.add_argument("--search-steps", type=int, default=12, help="uniform: bisection steps over the step size")
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--center-lr", type=float, default=1e-3)
    c.add_argument("--finetune-lr", type=float, default=1e-3)
    c.add_argument("--finetune-batch", type=int, default=128, help="batch size with fixed assignments (default 128)")
    c.add_argument("--batch", type=int, default=128)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--force", action="store_true", help="overwrite the output")
    c.add_argument("--amp", action="store_true", help=amp_help + " (shvq and deep-compression; uniform does not train)")
    c.set_defaults(func=_cmd_compress)

    e = nsub.add_parser("eval", parents=[common], help="evaluate a compressed file: test error, bytes, ratio (JSON)")
    e.add_argument("file", help="a compressed network (.shvq)")
    e.set_defaults(func=_cmd_eval)
