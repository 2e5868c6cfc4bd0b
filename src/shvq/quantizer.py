"""The soft-to-hard vector quantizer (Agustsson et al., NeurIPS 2017).

Grouping rule (how a tensor becomes ``m`` vectors of dimension ``d``):

* ``grouping="channels"`` — input ``N×C×*spatial`` (e.g. ``N×C×H×W``), ``C`` divisible by ``d``.
  Channels ``g·d … g·d+d−1`` at one position form one vector of *group* ``g``; there are
  ``G = C/d`` groups, each with its own histogram in a per-group entropy model.
  Symbols have shape ``N×G×*spatial``.
* ``grouping="flat"`` — input of any shape with ``numel`` divisible by ``d``; the tensor is
  flattened (row-major) and cut into consecutive runs of ``d``. One group; symbols have shape ``(m,)``.

All quantizer arithmetic runs in float32, also under autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

Grouping = Literal["channels", "flat"]
Mode = Literal["anneal", "straight_through"]


@dataclass
class QuantizerOutput:
    """What one forward pass of :class:`SoftToHardQuantizer` returns.

    Attributes:
        quantized: tensor of the input's shape: soft ``Q̃`` (annealing, training), hard values with
            the soft gradient (straight-through, training), or hard ``Q̂`` (eval / ``hard=True``).
        symbols: int64 center indices; ``N×G×*spatial`` for channel grouping, ``(m,)`` for flat.
        soft_hist: ``G×L`` mean soft assignment of the vectors of each group (differentiable);
            each row sums to 1.
        hard_counts: ``G×L`` float32 counts of hard symbols per group (no gradient).
        gap: scalar, mean Euclidean soft-hard gap ``‖Q̃(z) − Q̂(z)‖`` per vector (no gradient).
    """

    quantized: Tensor
    symbols: Tensor
    soft_hist: Tensor
    hard_counts: Tensor
    gap: Tensor

    @property
    def num_groups(self) -> int:
        return int(self.soft_hist.shape[0])

    @property
    def vectors_per_group(self) -> int:
        """Number of vectors ``m / G`` in each group."""
        return int(self.hard_counts[0].sum().item()) if self.hard_counts.numel() else 0


class SoftToHardQuantizer(nn.Module):
    """``L`` learned centers of dimension ``d`` with soft (temperature σ) and hard assignment.

    Args:
        num_centers: ``L``, the alphabet size (2 … 65536).
        dim: ``d``, the vector dimension (1 = scalar quantization).
        grouping: ``"channels"`` or ``"flat"`` (see the module docstring).
        mode: ``"anneal"`` — soft forward and backward while training, σ raised by a schedule;
            ``"straight_through"`` — hard forward, soft backward: ``Q̃ + stopgrad(Q̂ − Q̃)``.
        sigma: initial temperature σ (> 0) of ``softmax(−σ‖z − c‖²)``.
        pin_zero: if true, center 0 is fixed at the origin (never learned), so rate pressure
            can drive values to exactly zero (pruning).
        learn_centers: if false the centers stay where initialisation put them.
        init_range: ``(low, high)`` of the uniform grid the centers start on.
    """

    soft_assign_fn: Callable[[Tensor, Tensor, Tensor, int], tuple[Tensor, Tensor]] | None = None
    """Override of the soft-assignment routine ``(z, c, σ, G) -> (Q̃, soft histogram)``;
    ``None`` (the default) means :func:`soft_assign` (fused, recomputing in backward). Tests and
    benchmarks set :func:`soft_assign_dense` on an instance to compare with plain autograd."""

    def __init__(
        self,
        num_centers: int,
        dim: int = 1,
        *,
        grouping: Grouping = "channels",
        mode: Mode = "anneal",
        sigma: float = 1.0,
        pin_zero: bool = False,
        learn_centers: bool = True,
        init_range: tuple[float, float] = (-2.0, 2.0),
    ) -> None:
        super().__init__()
        if not 2 <= num_centers <= 65536:
            raise ValueError(f"num_centers must be in 2..65536, got {num_centers}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if grouping not in ("channels", "flat"):
            raise ValueError(f"grouping must be 'channels' or 'flat', got {grouping!r}")
        if mode not in ("anneal", "straight_through"):
            raise ValueError(f"mode must be 'anneal' or 'straight_through', got {mode!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.num_centers = num_centers
        self.dim = dim
        self.grouping: Grouping = grouping
        self.mode: Mode = mode
        self.pin_zero = pin_zero
        n_free = num_centers - 1 if pin_zero else num_centers
        self.free_centers = nn.Parameter(torch.zeros(n_free, dim), requires_grad=learn_centers)
        self.register_buffer("sigma", torch.tensor(float(sigma), dtype=torch.float32))
        self.init_uniform(*init_range)

    # ------------------------------------------------------------------ centers
    @property
    def centers(self) -> Tensor:
        """``L×d`` float32 codebook; row 0 is the pinned zero when ``pin_zero``."""
        c = self.free_centers.float()
        if self.pin_zero:
            c = torch.cat([c.new_zeros(1, self.dim), c], dim=0)
        return c

    @torch.no_grad()
    def set_centers(self, centers: Tensor) -> None:
        """Overwrite the codebook with an ``L×d`` tensor (row 0 must be zero when ``pin_zero``)."""
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.shape != (self.num_centers, self.dim):
            raise ValueError(f"expected centers of shape {(self.num_centers, self.dim)}, got {tuple(centers.shape)}")
        if self.pin_zero:
            centers = centers[1:]
        self.free_centers.copy_(centers.to(self.free_centers))

    @torch.no_grad()
    def init_uniform(self, low: float, high: float) -> None:
        """Place the centers on a uniform grid over ``[low, high]^d``.

        For ``d = 1`` the ``L`` centers are evenly spaced; for ``d > 1`` a grid of
        ``ceil(L^(1/d))`` points per axis is laid out and its first ``L`` points (in a fixed
        interleaved order that covers the cube) are taken. With ``pin_zero`` the grid point
        nearest the origin is replaced by the pinned zero.
        """
        if not high > low:
            raise ValueError("init_uniform needs high > low")
        L, d = self.num_centers, self.dim
        per_axis = max(2, math.ceil(L ** (1.0 / d) - 1e-9))
        axis = torch.linspace(low, high, per_axis)
        mesh = torch.stack(torch.meshgrid(*([axis] * d), indexing="ij"), dim=-1).reshape(-1, d)
        if mesh.shape[0] > L:  # spread the L picks evenly over the grid
            idx = torch.linspace(0, mesh.shape[0] - 1, L).round().long()
            mesh = mesh[idx]
        if self.pin_zero:
            nearest = int(mesh.pow(2).sum(1).argmin())
            mesh = torch.cat([mesh.new_zeros(1, d), mesh[:nearest], mesh[nearest + 1 :]], dim=0)
        self.set_centers(mesh[:L])

    @torch.no_grad()
    def init_kmeans(self, sample: Tensor, iters: int = 25, seed: int = 0, max_points: int = 20_000) -> None:
        """k-means (Lloyd, k-means++ seeding) on the vectors of ``sample`` (any shape this
        quantizer accepts), on a random subset of at most ``max_points`` vectors. Deterministic
        for a given ``seed``. With ``pin_zero`` the zero center stays fixed while the other
        ``L − 1`` centers move."""
        z = self.to_vectors(sample.detach().float())[0].cpu()
        if z.shape[0] == 0:
            raise ValueError("init_kmeans needs a non-empty sample")
        gen = torch.Generator().manual_seed(seed)
        if z.shape[0] > max_points:
            z = z[torch.randperm(z.shape[0], generator=gen)[:max_points]]
        L = self.num_centers
        if self.pin_zero:
            chosen = [torch.zeros(self.dim)]
        else:
            chosen = [z[torch.randint(z.shape[0], (1,), generator=gen)].squeeze(0)]
        while len(chosen) < L:  # k-means++ seeding
            c = torch.stack(chosen)
            d2 = _sq_dists(z, c).min(dim=1).values
            total = float(d2.sum())
            if total <= 0:
                idx = int(torch.randint(z.shape[0], (1,), generator=gen))
                chosen.append(z[idx] + 1e-3 * len(chosen))
                continue
            idx = int(torch.multinomial(d2 / total, 1, generator=gen))
            chosen.append(z[idx])
        c = torch.stack(chosen)
        for _ in range(iters):
            assign = nearest_center(z, c)
            sums = torch.zeros_like(c).index_add_(0, assign, z)
            counts = torch.bincount(assign, minlength=L).unsqueeze(1).float()
            new_c = torch.where(counts > 0, sums / counts.clamp_min(1), c)
            if self.pin_zero:
                new_c[0] = 0.0
            if torch.equal(new_c, c):
                break
            c = new_c
        self.set_centers(c)

    @torch.no_grad()
    def set_sigma(self, sigma: float) -> None:
        """Set the temperature σ (> 0)."""
        if not sigma > 0 or not math.isfinite(sigma):
            raise ValueError(f"sigma must be finite and > 0, got {sigma}")
        self.sigma.fill_(float(sigma))

    # ----------------------------------------------------------------- grouping
    def num_groups_for(self, shape: tuple[int, ...] | torch.Size) -> int:
        """Number of groups ``G`` for an input of this shape."""
        if self.grouping == "flat":
            return 1
        self._check_channels(tuple(shape))
        return shape[1] // self.dim

    def _check_channels(self, shape: tuple[int, ...]) -> None:
        if len(shape) < 2:
            raise ValueError(f"channel grouping needs an input of shape N×C×..., got {shape}")
        if shape[1] % self.dim:
            raise ValueError(f"channels ({shape[1]}) must be divisible by the vector dimension d={self.dim}")

    def to_vectors(self, x: Tensor) -> tuple[Tensor, int]:
        """Reshape ``x`` into ``(m×d, G)``: vectors ordered group-major (all of group 0 first)."""
        d = self.dim
        if self.grouping == "flat":
            if x.numel() % d:
                raise ValueError(f"flat grouping needs numel ({x.numel()}) divisible by d={d}")
            return x.reshape(-1, d), 1
        self._check_channels(tuple(x.shape))
        n, c = x.shape[:2]
        g = c // d
        # N×G×d×S -> G×N×S×d
        z = x.reshape(n, g, d, -1).permute(1, 0, 3, 2).reshape(-1, d)
        return z, g

    def from_vectors(self, z: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
        """Inverse of :meth:`to_vectors` for an input of ``shape``."""
        if self.grouping == "flat":
            return z.reshape(shape)
        n, c = shape[:2]
        g, d = c // self.dim, self.dim
        return z.reshape(g, n, -1, d).permute(1, 0, 3, 2).reshape(shape)

    def symbols_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
        """Shape of the symbol tensor for an input of ``shape``."""
        if self.grouping == "flat":
            return (math.prod(shape) // self.dim,)
        return (shape[0], shape[1] // self.dim, *shape[2:])

    def _symbols_from_flat(self, idx: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
        if self.grouping == "flat":
            return idx
        n, c = shape[:2]
        g = c // self.dim
        return idx.reshape(g, n, *shape[2:]).transpose(0, 1).contiguous()

    def _flat_from_symbols(self, symbols: Tensor) -> Tensor:
        if self.grouping == "flat":
            return symbols.reshape(-1)
        return symbols.transpose(0, 1).reshape(-1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, hard: bool | None = None) -> QuantizerOutput:
        """Quantize ``x``. ``hard=None`` means: soft while training, hard in eval mode."""
        if hard is None:
            hard = not self.training
        shape = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            z, g = self.to_vectors(x.float())
            c = self.centers.to(z.device)
            idx = nearest_center(z.detach(), c.detach())
            q_hard = c[idx]
            L = self.num_centers
            m_g = z.shape[0] // g if g else 0
            fn = (self.soft_assign_fn or soft_assign) if m_g else soft_assign_dense
            q_soft, soft_hist = fn(z, c, self.sigma.to(z.device), g)
            counts = torch.zeros(g, L, device=z.device)
            if m_g:
                counts.scatter_add_(1, idx.reshape(g, m_g), torch.ones(g, m_g, device=z.device))
            gap = (q_soft.detach() - q_hard.detach()).norm(dim=1).mean() if z.shape[0] else z.new_zeros(())
            if hard:
                out = q_hard
            elif self.mode == "anneal":
                out = q_soft
            else:
                out = q_soft + (q_hard - q_soft).detach()
            quantized = self.from_vectors(out, shape).to(x.dtype)
        return QuantizerOutput(
            quantized=quantized,
            symbols=self._symbols_from_flat(idx, shape),
            soft_hist=soft_hist,
            hard_counts=counts.detach(),
            gap=gap,
        )

    @torch.no_grad()
    def quantize_symbols(self, x: Tensor) -> Tensor:
        """Hard symbols only (no soft work): int64, shape :meth:`symbols_shape`."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            z, _ = self.to_vectors(x.float())
            idx = nearest_center(z, self.centers.to(z.device))
        return self._symbols_from_flat(idx, x.shape)

    def dequantize(self, symbols: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
        """Centers looked up by ``symbols`` and reshaped to an input of ``shape`` (float32).

        ``dequantize(quantize_symbols(x), x.shape)`` equals the hard output of ``forward(x)``.
        """
        flat = self._flat_from_symbols(symbols.long())
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.num_centers):
            raise ValueError("symbol out of range for this codebook")
        return self.from_vectors(self.centers.to(flat.device)[flat], shape)

    def extra_repr(self) -> str:
        return (
            f"num_centers={self.num_centers}, dim={self.dim}, grouping={self.grouping!r}, "
            f"mode={self.mode!r}, pin_zero={self.pin_zero}, sigma={float(self.sigma):g}"
        )


CHUNK_ELEMENTS = 1 << 20
""":func:`soft_assign` processes the rows of ``z`` in chunks of about this many ``m×L`` entries
(4 MiB of float32), which bounds its temporary memory; much smaller chunks cost time (more
operator calls, each of which may wake the thread pool)."""

NEAREST_CHUNK_ELEMENTS = 1 << 22
""":func:`nearest_center` works on chunks of about this many ``m×L`` distances (16 MiB)."""


def _sq_dists(z: Tensor, c: Tensor) -> Tensor:
    """``m×L`` squared Euclidean distances for the (differentiable) soft assignment.

    Uses ``‖z‖² − 2 z·c + ‖c‖²`` for ``d > 1`` to avoid the ``m×L×d`` broadcast; clamped at 0.
    """
    if z.shape[1] == 1:
        return (z - c.reshape(1, -1)).pow(2)
    return (z.pow(2).sum(1, keepdim=True) - 2.0 * (z @ c.t()) + c.pow(2).sum(1).unsqueeze(0)).clamp_min(0.0)


def soft_probabilities(z: Tensor, c: Tensor, sigma: Tensor | float) -> Tensor:
    """Soft assignment ``φ̃ = softmax(−σ ‖z − c_j‖²)`` of each row of ``z`` (``m×d``) to the
    centers ``c`` (``L×d``) -> ``m×L`` (rows sum to 1; differentiable, stores ``m×L`` tensors)."""
    return torch.softmax(-sigma * _sq_dists(z, c), dim=1)


def soft_assign_dense(z: Tensor, c: Tensor, sigma: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """Reference soft assignment with plain autograd (stores several ``m×L`` tensors).

    Args:
        z: ``m×d`` vectors, group-major (``m/G`` consecutive rows per group).
        c: ``L×d`` centers.
        sigma: scalar tensor σ.
        groups: ``G``.

    Returns:
        ``Q̃ = softmax(−σ D) C`` (``m×d``) and the per-group soft histogram (``G×L``, the mean
        of the soft assignments of each group's rows; uniform when there are no rows).
    """
    probs = soft_probabilities(z, c, sigma)
    q_soft = probs @ c
    L = c.shape[0]
    m_g = z.shape[0] // groups if groups else 0
    if m_g:
        soft_hist = probs.reshape(groups, m_g, L).mean(dim=1)
    else:
        soft_hist = probs.new_full((groups, L), 1.0 / L)
    return q_soft, soft_hist


def _segments(m_g: int, groups: int, num_centers: int) -> list[tuple[int, int, int, int]]:
    """Row chunks ``(row_start, row_end, first_group, num_whole_groups)`` covering ``G·m_g`` rows.

    A chunk is either ``k >= 1`` whole groups (``num_whole_groups = k``) or, when one group is
    larger than the chunk budget, a piece of one group (``num_whole_groups = 0``).
    """
    rows = max(1, CHUNK_ELEMENTS // max(num_centers, 1))
    out: list[tuple[int, int, int, int]] = []
    if m_g <= rows:
        k = max(1, rows // m_g)
        for g0 in range(0, groups, k):
            kk = min(k, groups - g0)
            out.append((g0 * m_g, (g0 + kk) * m_g, g0, kk))
    else:
        for g0 in range(groups):
            for a in range(0, m_g, rows):
                out.append((g0 * m_g + a, g0 * m_g + min(a + rows, m_g), g0, 0))
    return out


def _chunk_logits(zc: Tensor, c: Tensor, neg_sigma: Tensor, c_scaled: Tensor, c_bias: Tensor) -> Tensor:
    """Softmax logits of a chunk of rows, ``r×L`` (a fresh tensor).

    ``d = 1``: ``−σ (z − c)²``, the same float operations as :func:`_sq_dists`. ``d > 1``:
    ``2σ z·c − σ‖c‖²`` (``c_scaled = 2σC``, ``c_bias = −σ‖c‖²``) in one matrix product: this is
    ``−σ(‖z‖² − 2z·c + ‖c‖²)`` without the row constant ``−σ‖z‖²``, which a softmax ignores (its
    gradient through a row constant is zero), and without the clamp at 0, which only ever cuts
    rounding noise. So the probabilities equal the dense version's up to float32 rounding.
    """
    if zc.shape[1] == 1:
        return (zc - c.reshape(1, -1)).pow_(2).mul_(neg_sigma)
    return torch.addmm(c_bias, zc, c_scaled.t())


def _logit_terms(c: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(−σ, 2σC, −σ‖c‖²)`` for :func:`_chunk_logits`."""
    neg_sigma = -sigma
    return neg_sigma, c * (2.0 * sigma), c.pow(2).sum(1).unsqueeze(0) * neg_sigma


class _SoftAssign(torch.autograd.Function):
    """Fused soft assignment: forward and backward in row chunks, saving only ``z``, ``c`` and σ.

    The probabilities are recomputed in backward, so no ``m×L`` tensor outlives a chunk. With
    ``D`` the squared distances, ``P = softmax(−σD)``, ``Q̃ = PC`` and ``h_g = mean_{i∈g} P_i``,
    the upstream gradients ``∂/∂Q̃`` (``m×d``) and ``∂/∂h`` (``G×L``) give per row
    ``A = (∂/∂Q̃) Cᵀ + (∂/∂h)_g / m_g`` and ``E = P ⊙ (A − rowsum(P ⊙ A))`` (so ``∂/∂D = −σE``,
    and ``rowsum(E) = 0`` because the rows of ``P`` sum to 1); then
    ``∂/∂z = 2σ E C`` and ``∂/∂C = 2σ (Eᵀz − C ⊙ colsum(E)) + Pᵀ(∂/∂Q̃)``.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, c: Tensor, sigma: Tensor, groups: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        m, L = z.shape[0], c.shape[0]
        m_g = m // groups
        terms = _logit_terms(c, sigma)
        q_soft = z.new_empty(m, c.shape[1])
        hist = z.new_zeros(groups, L)
        for a, b, g0, k in _segments(m_g, groups, L):
            p = torch.softmax(_chunk_logits(z[a:b], c, *terms), dim=1)
            torch.mm(p, c, out=q_soft[a:b])
            if k:
                hist[g0 : g0 + k] += p.reshape(k, m_g, L).sum(1)
            else:
                hist[g0] += p.sum(0)
        hist /= m_g
        ctx.groups = groups
        ctx.save_for_backward(z, c, sigma)
        return q_soft, hist

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_q: Tensor, grad_hist: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        z, c, sigma = ctx.saved_tensors
        with torch.autocast(device_type=z.device.type, enabled=False):  # z.dtype, like the forward
            return _SoftAssign._backward(ctx, z, c, sigma, grad_q.to(z.dtype), grad_hist.to(z.dtype))

    @staticmethod
    def _backward(
        ctx: Any, z: Tensor, c: Tensor, sigma: Tensor, grad_q: Tensor, grad_hist: Tensor
    ) -> tuple[Tensor | None, ...]:
        """The backward pass proper: ``grad_q`` ``m×d``, ``grad_hist`` ``G×L`` -> (∂/∂z, ∂/∂C, None, None)."""
        groups: int = ctx.groups
        m, L = z.shape[0], c.shape[0]
        m_g = m // groups
        need_z, need_c = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        terms = _logit_terms(c, sigma)
        gh = grad_hist / m_g  # G×L
        c_t = c.t()
        grad_z = torch.empty_like(z) if need_z else None
        # [zᵀE ; colsum(E)] accumulates in one product, z augmented by a column of ones; the
        # products are taken as (d+1)×r · r×L, which BLAS does faster than L×r · r×(d+1)
        ez = z.new_zeros(c.shape[1] + 1, L) if need_c else None
        pq = z.new_zeros(c.shape[1], L) if need_c else None
        for a, b, g0, k in _segments(m_g, groups, L):
            zc, gq = z[a:b], grad_q[a:b]
            p = torch.softmax(_chunk_logits(zc, c, *terms), dim=1)
            e = gq @ c_t  # r×L: ∂/∂P through Q̃
            if k:
                e.view(k, m_g, L).add_(gh[g0 : g0 + k].unsqueeze(1))
            else:
                e.add_(gh[g0])
            e.mul_(p)  # P ⊙ A
            e.addcmul_(p, e.sum(1, keepdim=True), value=-1.0)  # E = P ⊙ A − P · rowsum(P ⊙ A)
            if grad_z is not None:
                torch.mm(e, c, out=grad_z[a:b])
            if ez is not None and pq is not None:
                ez.addmm_(torch.cat([zc, zc.new_ones(zc.shape[0], 1)], dim=1).t(), e)
                pq.addmm_(gq.t(), p)
        two_sigma = 2.0 * sigma
        if grad_z is not None:
            grad_z.mul_(two_sigma)
        grad_c = None
        if ez is not None and pq is not None:
            d = c.shape[1]
            grad_c = (ez[:d].t() - c * ez[d:].t()).mul_(two_sigma).add_(pq.t())
        return grad_z, grad_c, None, None


def soft_assign(z: Tensor, c: Tensor, sigma: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """Soft assignment, fused and memory-bounded; same values and gradients as
    :func:`soft_assign_dense` (up to float32 rounding).

    Args:
        z: ``m×d`` float32 vectors, group-major, ``m`` divisible by ``groups`` and ``m > 0``.
        c: ``L×d`` float32 centers.
        sigma: scalar float32 tensor σ (treated as a constant: no gradient).
        groups: ``G``.

    Returns:
        ``Q̃`` (``m×d``) and the per-group soft histogram (``G×L``, rows sum to 1). Autograd keeps
        only ``z``, ``c`` and σ; backward recomputes the distances chunk by chunk.
    """
    if z.shape[0] == 0 or groups < 1 or z.shape[0] % groups:
        return soft_assign_dense(z, c, sigma, groups)
    return _SoftAssign.apply(z.contiguous(), c.contiguous(), sigma.detach(), groups)


@torch.no_grad()
def nearest_center(z: Tensor, c: Tensor) -> Tensor:
    """Index of the nearest center for each row of ``z`` (``m×d``) among ``c`` (``L×d``), int64 ``(m,)``.

    Distances are summed coordinate by coordinate with element-wise float32 operations only (no
    matrix product), so the decision is bit-identical for any thread count or BLAS; ties go to the
    lowest index. Rows are processed in chunks (:data:`NEAREST_CHUNK_ELEMENTS`), which changes
    nothing in the result (each row's decision only involves that row).
    """
    m, L = z.shape[0], c.shape[0]
    rows = max(1, NEAREST_CHUNK_ELEMENTS // max(L, 1))
    if m <= rows:
        return _nearest_chunk(z, c)
    out = torch.empty(m, dtype=torch.int64, device=z.device)
    for a in range(0, m, rows):
        out[a : a + rows] = _nearest_chunk(z[a : a + rows], c)
    return out


def _nearest_chunk(z: Tensor, c: Tensor) -> Tensor:
    """:func:`nearest_center` on one chunk of rows (``r×d`` -> int64 ``(r,)``)."""
    dist = (z[:, :1] - c[:, 0].reshape(1, -1)).pow(2)
    for k in range(1, z.shape[1]):
        dist += (z[:, k : k + 1] - c[:, k].reshape(1, -1)).pow(2)
    return dist.argmin(dim=1)
