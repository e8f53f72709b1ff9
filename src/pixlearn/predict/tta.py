"""Test-time augmentation: average a predict function over flips and 90-degree rotations."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from pixlearn.predict.stream import PredictFn


def _dihedral(ndim: int) -> list[tuple[Callable[[np.ndarray, int], np.ndarray], Callable[[np.ndarray, int], np.ndarray]]]:
    """(forward, inverse) pairs of flips and in-plane 90-degree rotations; arg 2 = first spatial axis."""
    pairs: list[tuple[Callable[[np.ndarray, int], np.ndarray], Callable[[np.ndarray, int], np.ndarray]]] = []
    if ndim == 2:
        for k, flip in itertools.product(range(4), (False, True)):
            def fwd(x: np.ndarray, a: int, k: int = k, flip: bool = flip) -> np.ndarray:
                x = np.flip(x, a) if flip else x
                return np.rot90(x, k, axes=(a, a + 1))

            def inv(y: np.ndarray, a: int, k: int = k, flip: bool = flip) -> np.ndarray:
                y = np.rot90(y, -k, axes=(a, a + 1))
                return np.flip(y, a) if flip else y

            pairs.append((fwd, inv))
    else:
        for flips in itertools.product((False, True), repeat=ndim):
            axes = [i for i, f in enumerate(flips) if f]

            def flip_axes(x: np.ndarray, a: int, axes: list[int] = axes) -> np.ndarray:
                return np.flip(x, tuple(a + i for i in axes)) if axes else x

            pairs.append((flip_axes, flip_axes))
    return pairs


def with_tta(predict_fn: PredictFn, ndim: int, *, batched: bool = False) -> PredictFn:
    """Wrap a predict function with test-time augmentation.

    The prediction is the mean over the 8 flips and 90-degree rotations of the plane (2D) or
    the 8 flips of the axes (3D), each mapped back.

    Parameters
    ----------
    predict_fn : callable
        As for :func:`predict_tiled`.
    ndim : int
        Spatial axes (2 or 3).
    batched : bool
        `predict_fn` takes a stack ``(B, ..., C)``.

    Returns
    -------
    predict_fn : callable
    """
    pairs = _dihedral(ndim)
    first = 1 if batched else 0

    def predict(block: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        for fwd, inv in pairs:
            pred = inv(np.asarray(predict_fn(np.ascontiguousarray(fwd(block, first)))), first)
            total = pred.astype(np.float32) if total is None else total + pred
        assert total is not None
        return total / np.float32(len(pairs))

    return predict
