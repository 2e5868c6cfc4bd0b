import math

import pytest

from shvq.schedules import ConstantSigma, ExponentialSigma, GapDrivenSigma, LinearSigma, make_schedule


def test_constant() -> None:
    s = ConstantSigma(3.0)
    assert s.value == 3.0 and [s.step() for _ in range(3)] == [3.0, 3.0, 3.0]


def test_linear_reaches_end_and_stays() -> None:
    s = LinearSigma(1.0, 11.0, 10)
    vals = [s.step() for _ in range(12)]
    assert vals[0] == pytest.approx(2.0) and vals[4] == pytest.approx(6.0)
    assert vals[9] == vals[11] == pytest.approx(11.0)


def test_exponential_is_geometric() -> None:
    s = ExponentialSigma(1.0, 1000.0, 3)
    assert [round(s.step(), 9) for _ in range(4)] == [10.0, 100.0, 1000.0, 1000.0]


def test_gap_driven_rises_only_while_gap_is_large() -> None:
    s = GapDrivenSigma(start=2.0, target_gap=0.1, factor=2.0, max_sigma=10.0)
    assert s.step(0.5) == 4.0
    assert s.step(0.05) == 4.0
    assert s.step(0.5) == 8.0
    assert s.step(0.5) == 10.0  # capped
    with pytest.raises(ValueError, match="gap"):
        s.step(None)


def test_state_dict_resumes_exactly() -> None:
    a = ExponentialSigma(1.0, 100.0, 50)
    for _ in range(17):
        a.step()
    b = ExponentialSigma(1.0, 100.0, 50)
    b.load_state_dict(a.state_dict())
    assert [a.step() for _ in range(5)] == [b.step() for _ in range(5)]


def test_make_schedule_specs() -> None:
    assert isinstance(make_schedule("const:5"), ConstantSigma)
    lin = make_schedule("linear:1:3:2")
    assert isinstance(lin, LinearSigma) and lin.steps == 2
    exp = make_schedule("exp:1:100:10")
    assert isinstance(exp, ExponentialSigma) and math.isclose(exp.end, 100.0)
    gap = make_schedule("gap:1:0.01:1.05")
    assert isinstance(gap, GapDrivenSigma) and gap.factor == 1.05
    for bad in ["", "exp:1:2", "wave:1", "const:-1", "linear:a:b:c", "gap:1:0.1:0.5"]:
        with pytest.raises(ValueError):
            make_schedule(bad)
