"""The configuration of an image codec: everything needed to rebuild one (no PyTorch needed).

Shared by the PyTorch model (:class:`shvq.image.model.ImageCodec`, which trains) and the numpy
inference engine (:class:`shvq.image.engine.CodecEngine`, which writes and reads files).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from shvq.coding.context import MAX_CONTEXTS, MAX_VALUE_CONTEXTS

GDN_BETA_MIN = 1e-6
"""Lower bound added to GDN's ``beta`` (``softplus(beta_raw) + GDN_BETA_MIN``); part of the
architecture, not stored with the weights."""

@dataclass
class ImageCodecConfig:
    """Everything needed to rebuild an :class:`ImageCodec` (saved as JSON beside the weights).

    Attributes:
        channels: width ``N`` of the hidden layers.
        latent_channels: ``M``, channels of the latent (divisible by ``vector_dim``).
        num_centers: ``L``, codebook size.
        vector_dim: ``d``; ``M/d`` groups, each with its own histogram.
        mode: quantizer mode, ``"anneal"`` or ``"straight_through"``.
        sigma: initial σ of the soft assignment.
        init_range: the uniform grid the centers start on.
        rate: ``"cross_entropy"`` or ``"soft_entropy"``.
        shared_histogram: one histogram for all groups.
        precision: bits of the frozen frequency tables.
        kernel: convolution kernel size.
        contexts: ``K``, the activity buckets per group of the coding-time context model
            (:mod:`shvq.coding.context`), fitted after training; ``0`` (the default, and the
            paper's model) codes every group i.i.d. with its marginal table.
        value_contexts: ``V``, the predicted-value buckets of that context model (``1``: no
            prediction); ignored without ``contexts``.
        context_neighbours: use the neighbour context model
            (:mod:`shvq.coding.neighbour_context`: learned scores over the earlier groups' 3×3
            neighbourhoods and a checkerboard pass per group; ``K`` score buckets per
            checkerboard class) instead of the same-position one; needs ``contexts``.
        dequant_offsets: the model carries a learned reconstruction table (``recon_offsets``,
            ``G × L`` float32): symbol ``k`` of group ``g`` decodes to ``c_k + o[g, k]`` instead of
            the center ``c_k`` (:mod:`shvq.image.dequant`, fitted after training with everything
            else fixed; the encoder's symbols do not change). Scalar quantizers (``d = 1``) only.
    """

    channels: int = 64
    latent_channels: int = 96
    num_centers: int = 32
    vector_dim: int = 1
    mode: str = "straight_through"
    sigma: float = 1.0
    init_range: tuple[float, float] = (-15.5, 15.5)
    rate: str = "cross_entropy"
    shared_histogram: bool = False
    precision: int = 16
    kernel: int = 5
    contexts: int = 0
    value_contexts: int = 1
    context_neighbours: bool = False
    dequant_offsets: bool = False

    def __post_init__(self) -> None:
        self.init_range = (float(self.init_range[0]), float(self.init_range[1]))
        if self.channels < 1 or self.latent_channels < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("channels and latent_channels must be >= 1 and kernel odd")
        if self.contexts != 0 and not 2 <= self.contexts <= MAX_CONTEXTS:
            raise ValueError(f"contexts must be 0 (none) or in 2..{MAX_CONTEXTS}, got {self.contexts}")
        if self.context_neighbours and not self.contexts:
            raise ValueError("context_neighbours needs a context model (contexts >= 2)")
        if not 1 <= self.value_contexts <= MAX_VALUE_CONTEXTS:
            raise ValueError(f"value_contexts must be in 1..{MAX_VALUE_CONTEXTS}, got {self.value_contexts}")
        if self.dequant_offsets and self.vector_dim != 1:
            raise ValueError("dequant_offsets needs a scalar quantizer (vector_dim 1)")
        if self.latent_channels % self.vector_dim:
            raise ValueError(
                f"latent_channels ({self.latent_channels}) must be divisible by vector_dim ({self.vector_dim})"
            )

    @property
    def num_groups(self) -> int:
        return self.latent_channels // self.vector_dim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["init_range"] = list(self.init_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageCodecConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown image codec config keys: {sorted(unknown)}")
        d = dict(data)
        if "init_range" in d:
            d["init_range"] = tuple(d["init_range"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


__all__ = ["GDN_BETA_MIN", "ImageCodecConfig"]
