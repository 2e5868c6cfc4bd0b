"""Rate-distortion plots (matplotlib, Agg backend): bpp vs PSNR and bpp vs MS-SSIM (dB)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shvq.eval.results import RDCurve

__all__ = ["plot_rd", "rd_figure_png"]


def rd_figure_png(
    curves: Sequence[RDCurve],
    extra: Sequence[RDCurve] = (),
    *,
    title: str = "",
    max_bpp: float | None = None,
    log_x: bool = False,
    dpi: int = 110,
) -> bytes:
    """PNG bytes of a two-panel figure: PSNR (dB) and MS-SSIM (dB) against bpp.

    ``curves`` are drawn as solid lines with markers, ``extra`` (published curves) dashed.
    ``max_bpp`` cuts the x axis; ``log_x`` draws it on a log scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    panels = (("psnr", "PSNR (dB, RGB)"), ("ms-ssim", "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)"))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for curve, style in [(c, "-o") for c in curves] + [(c, "--") for c in extra]:
            x, y = curve.bpp, curve.metric(metric)
            ok = np.isfinite(x) & np.isfinite(y)
            if max_bpp is not None:
                ok &= x <= max_bpp
            if ok.any():
                ax.plot(x[ok], y[ok], style, markersize=3.5, linewidth=1.4, label=curve.name)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (bpp, real file sizes)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.35)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def plot_rd(
    curves: Sequence[RDCurve],
    out: str | Path,
    extra: Sequence[RDCurve] = (),
    *,
    title: str = "",
    max_bpp: float | None = None,
    log_x: bool = False,
) -> None:
    """Write :func:`rd_figure_png` to ``out`` (PNG, atomically; an existing file is replaced)."""
    from shvq.fileio import write_atomic

    write_atomic(out, rd_figure_png(curves, extra, title=title, max_bpp=max_bpp, log_x=log_x), overwrite=True)
