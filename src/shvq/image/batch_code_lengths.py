"""The code lengths a model's files are coded with, for a batch of symbol maps, in PyTorch on any
device: what training against the context model's real rate needs on a GPU.

:class:`shvq.image.refine.CodeLengths` answers the same question in numpy, one map at a time, for
the refining encoder. Training on a GPU would spend most of each step copying symbols to the CPU
and back through it. :class:`BatchCodeLengths` computes the neighbour context model's contexts
(:mod:`shvq.coding.neighbour_context`) for ``N`` maps at once on the maps' device, with the same
integer arithmetic:

* ``v = s − zero`` and ``m = |v|`` per group; 3×3 sums ``B(·)`` and, for the checkerboard's second
  class, the sums ``N(·)`` over the four direct neighbours that are anchors, all zero outside the
  map (sums of shifted slices, exact in float64);
* ``score`` and ``prediction`` = the model's integer weights times those features, in float64:
  every product and partial sum is an integer below 2^51, so any summation order (any BLAS, any
  GPU) gives the same integers, those of the coder;
* the context = ``(class·K + α)·V + ν`` with ``α``, ``ν`` the number of score and value edges at
  or below them, as the coder's ``searchsorted(side="right")``.

Without a context model every position of group ``g`` costs the marginal table's code lengths.
The context of a position comes from the current symbols, and how one symbol moves the contexts of
the others is not differentiated (as in :class:`~shvq.image.refine.CodeLengths`, which the tests
hold this equal to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from shvq.coding.neighbour_context import NeighbourContextModel
from shvq.coding.tables import table_bits

if TYPE_CHECKING:
    from shvq.image.engine import CodecEngine


def _box(f: Tensor) -> Tensor:
    """3×3 sums of ``N×G×h×w``, zero outside the map."""
    p = F.pad(f, (1, 1, 1, 1))
    h, w = f.shape[2], f.shape[3]
    return sum(p[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))  # type: ignore[return-value]


def _cross(f: Tensor) -> Tensor:
    """Sums of the four direct neighbours of ``N×G×h×w``, zero outside the map."""
    p = F.pad(f, (1, 1, 1, 1))
    h, w = f.shape[2], f.shape[3]
    return p[:, :, :h, 1 : w + 1] + p[:, :, 2:, 1 : w + 1] + p[:, :, 1 : h + 1, :w] + p[:, :, 1 : h + 1, 2:]


class BatchCodeLengths:
    """Bits of every symbol value at every position of ``N`` symbol maps, under the model a
    file is coded with (the neighbour context model, or the marginal tables without one).

    Args:
        engine: the model's :class:`~shvq.image.engine.CodecEngine` (its tables and context model).
        device: where the maps will be (the tables are copied there once).
    """

    def __init__(self, engine: CodecEngine, device: str | torch.device = "cpu") -> None:
        dev = torch.device(device)
        cm = engine.context
        if cm is not None and not isinstance(cm, NeighbourContextModel):
            raise TypeError("BatchCodeLengths handles the neighbour context model (or none), not the same-position one")
        self.context = cm
        if cm is None:
            self.cost = torch.tensor(table_bits(engine.tables, engine.config.precision), dtype=torch.float32, device=dev)
            return
        self.cost = torch.tensor(table_bits(cm.tables, cm.precision), dtype=torch.float32, device=dev)  # G × C × L
        self.weights = torch.tensor(cm.weights, dtype=torch.float64, device=dev)  # 2 × 2 × G × (2G+2)
        self.edges = torch.tensor(cm.edges, dtype=torch.int64, device=dev)  # 2 × G × (K−1)
        self.value_edges = torch.tensor(cm.value_edges, dtype=torch.int64, device=dev)  # G × (V−1)
        self.zeros = torch.tensor(cm.zeros, dtype=torch.int64, device=dev)  # G

    def contexts(self, symbols: Tensor) -> Tensor:
        """Context index of every symbol: int64 ``N×G×h×w`` -> int64 ``N×G×h×w``."""
        if self.context is None:
            raise ValueError("this model codes its symbols without a context model")
        n, g, h, w = symbols.shape
        v = (symbols.long() - self.zeros.view(1, g, 1, 1)).double()
        yy, xx = torch.meshgrid(torch.arange(h, device=v.device), torch.arange(w, device=v.device), indexing="ij")
        anchor = ((yy + xx) % 2 == 0).view(1, 1, h, w)
        sums = []  # per kind (0: score from m, 1: prediction from v), the integer sums of both classes
        for kind, f in enumerate((v.abs(), v)):
            wk = self.weights[kind]  # 2 × G × (2G+2)
            own = _cross(torch.where(anchor, f, torch.zeros_like(f)))
            box = _box(f)
            per_class = []
            for c in range(2):
                s = torch.einsum("gj,njhw->nghw", wk[c, :, :g], f) + torch.einsum("gj,njhw->nghw", wk[c, :, g : 2 * g], box)
                s = s + wk[c, :, 2 * g].view(1, g, 1, 1) * own + wk[c, :, 2 * g + 1].view(1, g, 1, 1)
                per_class.append(s)
            sums.append(torch.where(anchor, per_class[0], per_class[1]).long())
        score, pred = sums
        cls = (~anchor).long().expand(n, g, h, w)
        k, nv = self.edges.shape[2] + 1, self.value_edges.shape[1] + 1
        edges = self.edges.view(2, 1, g, 1, 1, k - 1)
        alpha = torch.where(anchor.unsqueeze(-1), score.unsqueeze(-1) >= edges[0], score.unsqueeze(-1) >= edges[1]).sum(-1)
        nu = (pred.unsqueeze(-1) >= self.value_edges.view(1, g, 1, 1, nv - 1)).sum(-1)
        return (cls * k + alpha) * nv + nu

    def __call__(self, symbols: Tensor) -> Tensor:
        """int64 ``N×G×h×w`` symbols -> float32 ``N×G×h×w×L`` code lengths in bits."""
        n, g, h, w = symbols.shape
        if self.context is None:
            return self.cost.view(1, g, 1, 1, -1).expand(n, g, h, w, self.cost.shape[1])
        ctx = self.contexts(symbols)
        return self.cost[torch.arange(g, device=ctx.device).view(1, g, 1, 1), ctx]


__all__ = ["BatchCodeLengths"]
