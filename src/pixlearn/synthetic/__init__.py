"""Synthetic data: fluorescence-like nuclei images with exact labels, and simulated annotations.

The demo, the tests and the benchmarks make their data here instead of downloading it.
:func:`make_nuclei` draws one image and its instance labels from a :class:`SyntheticConfig`
(shapes and placement in :mod:`pixlearn.synthetic.geometry`); :func:`make_dataset` writes a
folder of them; :mod:`pixlearn.synthetic.scribbles` turns exact labels into what a user would
paint (class masks, sparse scribbles); :mod:`pixlearn.synthetic.fluorescence` draws mixed
fluorescence scenes and their noisy acquisitions, pairs for a denoiser. This room imports NumPy/SciPy, :mod:`pixlearn.config` and
:mod:`pixlearn.data` only.
"""

from __future__ import annotations

from pixlearn.synthetic.nuclei import SyntheticConfig, make_dataset, make_nuclei
from pixlearn.synthetic.scribbles import dense_to_scribbles, instances_to_semantic, simulate_scribbles

__all__ = [
    "SyntheticConfig",
    "dense_to_scribbles",
    "instances_to_semantic",
    "make_dataset",
    "make_nuclei",
    "simulate_scribbles",
]
