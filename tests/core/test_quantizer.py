import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from shvq.quantizer import SoftToHardQuantizer, nearest_center


def _well_separated(x: torch.Tensor, q: SoftToHardQuantizer, margin: float) -> bool:
    z, _ = q.to_vectors(x)
    d = ((z[:, None, :] - q.centers[None]) ** 2).sum(-1)
    two = d.topk(2, dim=1, largest=False).values
    return bool((two[:, 1] - two[:, 0] > margin).all())


@given(
    seed=st.integers(0, 2**31 - 1),
    L=st.integers(2, 32),
    d=st.sampled_from([1, 2, 3, 4]),
    mode=st.sampled_from(["anneal", "straight_through"]),
)
def test_large_sigma_soft_equals_hard(seed: int, L: int, d: int, mode: str) -> None:
    g = torch.Generator().manual_seed(seed)
    q = SoftToHardQuantizer(L, d, grouping="flat", mode=mode)
    q.set_centers(torch.randn(L, d, generator=g) * 2)
    x = torch.randn(64 * d, generator=g)
    if not _well_separated(x, q, 1e-3):
        return  # near-ties: soft cannot match hard at finite sigma
    q.set_sigma(1e7)
    q.train()
    soft = q(x, hard=False)
    hard = q(x, hard=True)
    torch.testing.assert_close(soft.quantized, hard.quantized, rtol=0, atol=1e-5)
    assert float(soft.gap) < 1e-5
    # and the soft histogram collapses onto the hard one
    torch.testing.assert_close(soft.soft_hist * x.numel() / d, soft.hard_counts, rtol=0, atol=1e-3)


def test_small_sigma_is_soft() -> None:
    q = SoftToHardQuantizer(4, 1, grouping="flat", sigma=0.01)
    out = q(torch.linspace(-1, 1, 9), hard=False)
    assert float(out.gap) > 0.1


@pytest.mark.parametrize("mode", ["anneal", "straight_through"])
@pytest.mark.parametrize("pin_zero", [False, True])
def test_gradients_reach_inputs_and_centers(mode: str, pin_zero: bool) -> None:
    torch.manual_seed(0)
    q = SoftToHardQuantizer(8, 2, mode=mode, sigma=3.0, pin_zero=pin_zero)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(x)
    (out.quantized.pow(2).sum() + out.soft_hist.pow(2).sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert q.free_centers.grad is not None and q.free_centers.grad.abs().sum() > 0


def test_straight_through_gradient_is_exactly_the_soft_gradient() -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 6, 4, 5)
    w = torch.randn(3, 6, 4, 5)
    grads = {}
    for mode in ("anneal", "straight_through"):
        q = SoftToHardQuantizer(16, 3, mode=mode, sigma=2.5)
        q.set_centers(torch.linspace(-2, 2, 48).reshape(16, 3))
        xi = x.clone().requires_grad_(True)
        out = q(xi)
        (out.quantized * w).sum().backward()
        grads[mode] = (xi.grad.clone(), q.free_centers.grad.clone())
    assert torch.equal(grads["anneal"][0], grads["straight_through"][0])
    assert torch.equal(grads["anneal"][1], grads["straight_through"][1])


def test_straight_through_forward_is_hard() -> None:
    torch.manual_seed(2)
    q = SoftToHardQuantizer(8, 2, mode="straight_through", sigma=1.0)
    x = torch.randn(2, 4, 3, 3)
    st_out = q(x).quantized
    hard = q(x, hard=True).quantized
    torch.testing.assert_close(st_out, hard, rtol=0, atol=1e-6)


@given(
    n=st.integers(1, 3),
    groups=st.integers(1, 4),
    d=st.sampled_from([1, 2, 4]),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
)
def test_channel_grouping_round_trips(n: int, groups: int, d: int, h: int, w: int) -> None:
    q = SoftToHardQuantizer(4, d)
    x = torch.randn(n, groups * d, h, w)
    z, g = q.to_vectors(x)
    assert g == groups and z.shape == (n * groups * h * w, d)
    assert torch.equal(q.from_vectors(z, x.shape), x)
    # a vector is d consecutive channels at one position, group g = channels g*d..g*d+d-1
    gi, ni, hi, wi = groups - 1, n - 1, h - 1, w - 1
    idx = ((gi * n + ni) * h + hi) * w + wi
    assert torch.equal(z[idx], x[ni, gi * d : gi * d + d, hi, wi])
    sym = q.quantize_symbols(x)
    assert sym.shape == (n, groups, h, w)
    assert torch.equal(q.dequantize(sym, x.shape), q.eval()(x).quantized)


def test_flat_grouping_and_errors() -> None:
    q = SoftToHardQuantizer(4, 3, grouping="flat")
    x = torch.randn(2, 3, 5)
    out = q(x)
    assert out.symbols.shape == (10,) and out.soft_hist.shape == (1, 4)
    assert out.hard_counts.sum() == 10
    with pytest.raises(ValueError, match="divisible"):
        q(torch.randn(7))
    with pytest.raises(ValueError, match="divisible"):
        SoftToHardQuantizer(4, 3)(torch.randn(1, 4, 2, 2))
    with pytest.raises(ValueError):
        SoftToHardQuantizer(1)
    with pytest.raises(ValueError):
        SoftToHardQuantizer(4, mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        q.dequantize(torch.tensor([4]), (3,))


def test_pinned_zero_stays_zero_under_training() -> None:
    torch.manual_seed(3)
    q = SoftToHardQuantizer(5, 2, grouping="flat", pin_zero=True, sigma=2.0)
    opt = torch.optim.SGD(q.parameters(), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        out = q(torch.randn(40) + 1.0)
        out.quantized.sum().backward()
        opt.step()
    assert torch.equal(q.centers[0], torch.zeros(2))
    assert q.centers.shape == (5, 2)
    q.init_kmeans(torch.randn(400) + 3.0)
    assert torch.equal(q.centers[0], torch.zeros(2))


def test_fixed_centers_do_not_learn() -> None:
    q = SoftToHardQuantizer(4, 1, grouping="flat", learn_centers=False)
    before = q.centers.clone()
    out = q(torch.randn(10, requires_grad=True))
    out.quantized.sum().backward()
    assert q.free_centers.grad is None
    assert torch.equal(q.centers, before)


def test_uniform_init_covers_the_range() -> None:
    q = SoftToHardQuantizer(9, 1, init_range=(-4.0, 4.0))
    assert torch.allclose(q.centers.squeeze(1), torch.linspace(-4, 4, 9))
    q2 = SoftToHardQuantizer(16, 2, init_range=(-1.0, 1.0))
    c = q2.centers.detach()
    assert c.shape == (16, 2) and len({tuple(r) for r in c.tolist()}) == 16
    assert float(c.min()) == -1.0 and float(c.max()) == 1.0


def test_kmeans_init_finds_clusters_and_is_deterministic() -> None:
    g = torch.Generator().manual_seed(0)
    truth = torch.tensor([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    pts = truth[torch.randint(3, (600,), generator=g)] + 0.05 * torch.randn(600, 2, generator=g)
    q = SoftToHardQuantizer(3, 2, grouping="flat")
    q.init_kmeans(pts, seed=7)
    found = sorted(q.centers.tolist())
    for f, t in zip(found, sorted(truth.tolist())):
        assert abs(f[0] - t[0]) < 0.05 and abs(f[1] - t[1]) < 0.05
    q2 = SoftToHardQuantizer(3, 2, grouping="flat")
    q2.init_kmeans(pts, seed=7)
    assert torch.equal(q.centers, q2.centers)


def test_float32_under_autocast() -> None:
    q = SoftToHardQuantizer(8, 2, sigma=2.0)
    x = torch.randn(1, 4, 3, 3).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(x)
    assert out.soft_hist.dtype == torch.float32
    assert out.quantized.dtype == torch.bfloat16  # handed back in the caller's dtype
    ref = q(x.float())
    torch.testing.assert_close(out.soft_hist, ref.soft_hist)


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 6))
def test_nearest_center_matches_brute_force(seed: int, d: int) -> None:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(50, d, generator=g)
    c = torch.randn(7, d, generator=g)
    brute = ((z[:, None, :].double() - c[None].double()) ** 2).sum(-1).argmin(1)
    got = nearest_center(z, c)
    # equal except on float32 near-ties
    dd = ((z[:, None, :].double() - c[None].double()) ** 2).sum(-1)
    ok = (got == brute) | ((dd.gather(1, got[:, None]) - dd.gather(1, brute[:, None])).abs().squeeze(1) < 1e-5)
    assert bool(ok.all())


def test_state_dict_round_trip() -> None:
    q = SoftToHardQuantizer(6, 2, pin_zero=True, sigma=4.0)
    q.init_kmeans(torch.randn(2, 4, 8, 8))
    q2 = SoftToHardQuantizer(6, 2, pin_zero=True)
    q2.load_state_dict(q.state_dict())
    assert torch.equal(q.centers, q2.centers) and float(q2.sigma) == 4.0
