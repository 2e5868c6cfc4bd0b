"""Evaluation: classical codecs, metrics, rate-distortion sweeps, BD-rate, plots and reports.

* :mod:`shvq.eval.codecs` — the :class:`~shvq.eval.codecs.Codec` interface, built-in adapters
  and :func:`~shvq.eval.codecs.register_codec`
* :mod:`shvq.eval.metrics` — PSNR, MS-SSIM, bpp
* :mod:`shvq.eval.images` — loading a folder of images as 8-bit RGB
* :mod:`shvq.eval.sweep` — measuring, caching, per-setting summaries, target-bpp search
* :mod:`shvq.eval.results` — CompressAI-shaped result JSON files
* :mod:`shvq.eval.bdrate` — Bjøntegaard deltas with PCHIP interpolation
* :mod:`shvq.eval.plot`, :mod:`shvq.eval.report` — RD plots and the self-contained HTML report
* :mod:`shvq.eval.cli` — ``shvq eval | bdrate | plot | report``

Submodules are imported on demand; importing this package loads nothing heavy.
"""
