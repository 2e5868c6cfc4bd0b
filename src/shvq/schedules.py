"""σ schedules for soft-to-hard annealing.

Each schedule is a small object: ``value`` is the current σ, ``step(gap)`` advances one training
step and returns the new σ. ``state_dict``/``load_state_dict`` let training resume exactly.

Typical use::

    sched = ExponentialSigma(start=1.0, end=1e4, steps=20_000)
    for batch in loader:
        out = quantizer(latent)
        ...
        quantizer.set_sigma(sched.step(float(out.gap)))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be finite and > 0, got {v}")


@dataclass
class SigmaSchedule:
    """Base class: holds the step counter and current value."""

    t: int = field(default=0, init=False)
    value: float = field(default=1.0, init=False)

    def step(self, gap: float | None = None) -> float:
        """Advance one step (``gap`` is the current soft-hard gap, used by gap-driven schedules)."""
        self.t += 1
        self.value = self._value_at(self.t, gap)
        return self.value

    def _value_at(self, t: int, gap: float | None) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


@dataclass
class ConstantSigma(SigmaSchedule):
    """σ fixed at ``sigma`` (the usual choice for straight-through training)."""

    sigma: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(sigma=self.sigma)
        self.value = self.sigma

    def _value_at(self, t: int, gap: float | None) -> float:
        return self.sigma


@dataclass
class LinearSigma(SigmaSchedule):
    """σ goes linearly from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``."""

    start: float = 1.0
    end: float = 100.0
    steps: int = 1000

    def __post_init__(self) -> None:
        _check_positive(start=self.start, end=self.end, steps=self.steps)
        self.value = self.start

    def _value_at(self, t: int, gap: float | None) -> float:
        f = min(t / self.steps, 1.0)
        return self.start + f * (self.end - self.start)


@dataclass
class ExponentialSigma(SigmaSchedule):
    """σ grows geometrically from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``."""

    start: float = 1.0
    end: float = 1e4
    steps: int = 1000

    def __post_init__(self) -> None:
        _check_positive(start=self.start, end=self.end, steps=self.steps)
        self.value = self.start

    def _value_at(self, t: int, gap: float | None) -> float:
        f = min(t / self.steps, 1.0)
        return self.start * (self.end / self.start) ** f


@dataclass
class GapDrivenSigma(SigmaSchedule):
    """σ is multiplied by ``factor`` on every step whose soft-hard gap exceeds ``target_gap``,
    and held otherwise, never beyond ``max_sigma``. Anneals exactly as fast as the network lets
    the soft and hard outputs agree."""

    start: float = 1.0
    target_gap: float = 0.01
    factor: float = 1.01
    max_sigma: float = 1e6

    def __post_init__(self) -> None:
        _check_positive(start=self.start, target_gap=self.target_gap, max_sigma=self.max_sigma)
        if not self.factor > 1:
            raise ValueError(f"factor must be > 1, got {self.factor}")
        self.value = self.start

    def _value_at(self, t: int, gap: float | None) -> float:
        if gap is None:
            raise ValueError("GapDrivenSigma.step needs the current soft-hard gap")
        if gap > self.target_gap:
            return min(self.value * self.factor, self.max_sigma)
        return self.value


def make_schedule(spec: str) -> SigmaSchedule:
    """Build a schedule from a short spec, as used on the command line:

    ``const:S`` · ``linear:START:END:STEPS`` · ``exp:START:END:STEPS`` ·
    ``gap:START:TARGET[:FACTOR[:MAX]]``.
    """
    name, _, rest = spec.partition(":")
    try:
        args = [float(a) for a in rest.split(":")] if rest else []
        if name == "const" and len(args) == 1:
            return ConstantSigma(args[0])
        if name == "linear" and len(args) == 3:
            return LinearSigma(args[0], args[1], int(args[2]))
        if name == "exp" and len(args) == 3:
            return ExponentialSigma(args[0], args[1], int(args[2]))
        if name == "gap" and 2 <= len(args) <= 4:
            return GapDrivenSigma(*args)
    except ValueError as exc:
        raise ValueError(f"bad sigma schedule {spec!r}: {exc}") from None
    raise ValueError(
        f"bad sigma schedule {spec!r}: expected const:S, linear:A:B:STEPS, exp:A:B:STEPS or gap:S:TARGET[:FACTOR[:MAX]]"
    )
