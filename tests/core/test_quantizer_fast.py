"""The fused, recomputing soft assignment (``shvq.quantizer.soft_assign``) against the plain
autograd implementation the quantizer used before it (copied here as ``_old_forward``): same
symbols (bit-exact), same soft outputs, histograms and gradients within float32 tolerance."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from shvq import quantizer as qmod
from shvq.quantizer import SoftToHardQuantizer, nearest_center, soft_assign, soft_assign_dense


def _old_sq_dists(z: Tensor, c: Tensor) -> Tensor:
    if z.shape[1] == 1:
        return (z - c.reshape(1, -1)).pow(2)
    return (z.pow(2).sum(1, keepdim=True) - 2.0 * (z @ c.t()) + c.pow(2).sum(1).unsqueeze(0)).clamp_min(0.0)


def _old_forward(q: SoftToHardQuantizer, x: Tensor, hard: bool) -> dict[str, Tensor]:
    """The quantizer's forward as it was before the fused soft assignment (the reference)."""
    shape = x.shape
    z, g = q.to_vectors(x.float())
    c = q.centers
    dist = _old_sq_dists(z, c)
    idx = nearest_center(z.detach(), c.detach())
    q_hard = c[idx]
    probs = torch.softmax(-q.sigma * dist, dim=1)
    q_soft = probs @ c
    L = q.num_centers
    m_g = z.shape[0] // g
    soft_hist = probs.reshape(g, m_g, L).mean(dim=1)
    counts = torch.zeros(g, L)
    counts.scatter_add_(1, idx.reshape(g, m_g), torch.ones(g, m_g))
    gap = (q_soft.detach() - q_hard.detach()).norm(dim=1).mean()
    if hard:
        out = q_hard
    elif q.mode == "anneal":
        out = q_soft
    else:
        out = q_soft + (q_hard - q_soft).detach()
    return {
        "quantized": q.from_vectors(out, shape),
        "symbols": q._symbols_from_flat(idx, shape),
        "soft_hist": soft_hist,
        "hard_counts": counts,
        "gap": gap,
    }


CASES = [
    # (input shape, grouping, L, d, sigma)
    ((2, 8, 5, 7), "channels", 16, 4, 1.0),
    ((3, 6, 4, 5), "channels", 64, 2, 0.3),
    ((2, 12, 6, 6), "channels", 7, 1, 5.0),
    ((2, 96, 4, 4), "channels", 256, 4, 0.05),
    ((4, 9, 3, 3), "channels", 32, 3, 20.0),
    ((1000,), "flat", 16, 1, 2.0),
    ((40, 12), "flat", 64, 4, 0.7),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]}-L{c[2]}-d{c[3]}-s{c[4]}" for c in CASES])
@pytest.mark.parametrize("mode", ["anneal", "straight_through"])
@pytest.mark.parametrize("pin_zero", [False, True])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("chunk", [qmod.CHUNK_ELEMENTS, 64])
def test_fused_matches_old_forward_and_gradients(
    case: tuple, mode: str, pin_zero: bool, hard: bool, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape, grouping, L, d, sigma = case
    monkeypatch.setattr(qmod, "CHUNK_ELEMENTS", chunk)  # 64: many chunks, also pieces of one group
    gen = torch.Generator().manual_seed(L * 1000 + d * 10 + int(pin_zero))
    q = SoftToHardQuantizer(L, d, grouping=grouping, mode=mode, sigma=sigma, pin_zero=pin_zero)  # type: ignore[arg-type]
    centers = torch.randn(L, d, generator=gen) * 1.5
    if pin_zero:
        centers[0] = 0
    q.set_centers(centers)
    q.train()
    x = torch.randn(*shape, generator=gen) * 1.7
    w_out = torch.randn(*shape, generator=gen)
    g = q.num_groups_for(shape)
    w_hist = torch.randn(g, L, generator=gen)

    results = {}
    for name in ("old", "new"):
        xi = x.clone().requires_grad_(True)
        q.zero_grad(set_to_none=True)
        if name == "old":
            o = _old_forward(q, xi, hard)
            fields = o
        else:
            out = q(xi, hard=hard)
            fields = {k: getattr(out, k) for k in ("quantized", "symbols", "soft_hist", "hard_counts", "gap")}
        loss = (fields["quantized"] * w_out).sum() + (fields["soft_hist"] * w_hist).sum()
        loss.backward()
        results[name] = (fields, xi.grad.clone(), q.free_centers.grad.clone())

    (old, gx_old, gc_old), (new, gx_new, gc_new) = results["old"], results["new"]
    assert torch.equal(old["symbols"], new["symbols"])
    assert torch.equal(old["hard_counts"], new["hard_counts"])
    assert new["quantized"].shape == x.shape and new["soft_hist"].shape == (g, L)
    torch.testing.assert_close(new["quantized"], old["quantized"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new["soft_hist"], old["soft_hist"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new["gap"], old["gap"], rtol=1e-5, atol=1e-6)
    scale_x = float(gx_old.abs().max()) + 1e-6
    scale_c = float(gc_old.abs().max()) + 1e-6
    torch.testing.assert_close(gx_new, gx_old, rtol=1e-4, atol=1e-5 * scale_x)
    torch.testing.assert_close(gc_new, gc_old, rtol=1e-4, atol=1e-5 * scale_c)


def test_fused_gradcheck_float64() -> None:
    """The hand-written backward is the derivative of the forward (finite differences, float64)."""
    gen = torch.Generator().manual_seed(3)
    for d, groups in ((1, 3), (3, 2)):
        z = torch.randn(12, d, generator=gen, dtype=torch.float64, requires_grad=True)
        c = torch.randn(5, d, generator=gen, dtype=torch.float64, requires_grad=True)
        sigma = torch.tensor(0.8, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda z, c: soft_assign(z, c, sigma, groups), (z, c))


def test_dense_override_matches_default() -> None:
    """``soft_assign_fn = soft_assign_dense`` (used by the benchmark) gives the same outputs."""
    torch.manual_seed(5)
    q = SoftToHardQuantizer(32, 2, sigma=2.0)
    x = torch.randn(2, 8, 6, 6)
    fused = q(x)
    q.soft_assign_fn = soft_assign_dense
    dense = q(x)
    assert torch.equal(fused.symbols, dense.symbols)
    torch.testing.assert_close(fused.quantized, dense.quantized, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.soft_hist, dense.soft_hist, rtol=1e-5, atol=1e-6)


def test_nearest_center_chunking_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(9)
    z = torch.randn(5000, 3, generator=gen)
    c = torch.randn(40, 3, generator=gen)
    whole = nearest_center(z, c)
    monkeypatch.setattr(qmod, "NEAREST_CHUNK_ELEMENTS", 40 * 7)
    assert torch.equal(nearest_center(z, c), whole)


def test_fused_saves_no_mxL_tensor() -> None:
    """Autograd keeps only ``z`` (m×d), the centers and σ for the soft assignment."""
    torch.manual_seed(0)
    q = SoftToHardQuantizer(256, 1, sigma=1.0)
    x = torch.randn(2, 16, 32, 32, requires_grad=True)
    m, L = x.numel(), 256
    saved: list[int] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = q(x)
        loss = out.quantized.sum() + out.soft_hist.sum()
    loss.backward()
    assert saved and max(saved) < m * L // 16


def test_empty_input_still_works() -> None:
    q = SoftToHardQuantizer(8, 2, grouping="flat", sigma=1.0)
    out = q(torch.zeros(0, 4), hard=False)
    assert out.quantized.shape == (0, 4)
    torch.testing.assert_close(out.soft_hist, torch.full((1, 8), 1 / 8))


def test_backward_under_autocast_stays_float32() -> None:
    """Backward called inside an autocast region gives the float32 gradients."""
    torch.manual_seed(4)
    q = SoftToHardQuantizer(16, 2, mode="anneal", sigma=1.5)
    x = torch.randn(2, 6, 5, 5)
    grads = []
    for amp in (False, True):
        xi = x.clone().requires_grad_(True)
        q.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = q(xi)
            (out.quantized.float().pow(2).sum() + out.soft_hist.sum()).backward()
        grads.append((xi.grad, q.free_centers.grad))
    assert grads[1][0].dtype == torch.float32
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-5, atol=1e-5)
