"""Predicting probability and label maps from feature stacks with a fitted estimator.

:class:`ScratchStack` keeps one feature stack for reuse from tile to tile: a fresh array of a
few hundred megabytes costs more to fault in, page by page, than the features take to compute
on some machines (virtual machines especially).
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pixlearn.classical.estimators import n_threads

logger = logging.getLogger(__name__)

_CHUNK = 8192  # pixels per prediction step: features of a chunk stay in cache


class ScratchStack:
    """A float32 buffer lent out for one feature stack at a time, grown to the largest asked for.

    A caller that finds it lent out (another thread) gets a fresh array instead; it is never
    pickled (a copy of a model gets an empty one).

    Examples
    --------
    >>> scratch = ScratchStack()
    >>> with scratch.lend((3, 4)) as a:
    ...     a.shape, a.dtype
    ((3, 4), dtype('float32'))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flat: np.ndarray | None = None

    @contextlib.contextmanager
    def lend(self, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
        """An uninitialised float32 array of `shape`, the buffer's own while it is free."""
        if not self._lock.acquire(blocking=False):
            yield np.empty(shape, np.float32)
            return
        try:
            size = math.prod(shape)
            if self._flat is None or self._flat.size < size:
                self._flat = None  # the old one goes first: never both at once
                self._flat = _fresh_pages(size)
            yield self._flat[:size].reshape(shape)
        finally:
            self._lock.release()

    def release(self) -> None:
        """Let the buffer go (it is made again when next lent)."""
        with self._lock:
            self._flat = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


def _fresh_pages(size: int) -> np.ndarray:
    """An uninitialised float32 array of `size` in its own anonymous memory map.

    Unlike ``np.empty``, which asks for transparent huge pages on Linux (``madvise``) for large
    arrays, the map gets ordinary pages: where the kernel compacts memory to find a huge page on
    the first touch (``defrag=madvise``), faulting in a feature stack of a few hundred
    megabytes that way took longer than computing its features (measured on the VNC benchmark:
    about 2 CPU seconds more for the first tile of 380 MB); ordinary pages fault in quickly, and
    the walks of the forest over the stack ran as fast. The map is unmapped when the array goes.
    """
    if size == 0:
        return np.empty(0, np.float32)
    return np.frombuffer(mmap.mmap(-1, size * 4), np.float32)


def _forest_tables(estimator: Any) -> list[tuple[Any, np.ndarray]] | None:
    """(tree, leaf class fractions float32) per tree of a fitted forest, else ``None``."""
    trees = getattr(estimator, "estimators_", None)
    if not isinstance(trees, list) or not trees or not hasattr(trees[0], "tree_"):
        return None
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None
    from pixlearn.classical.forest import node_fractions  # plain NumPy: numba comes with the kernels only

    return [(tree.tree_, node_fractions(tree.tree_)) for tree in trees]


def compile_forest_or_none(estimator: Any) -> Any | None:
    """:class:`pixlearn.classical.forest.CompiledForest` of a fitted forest; ``None`` for other estimators
    or without numba (prediction then walks the scikit-learn trees)."""
    if _forest_tables(estimator) is None:
        return None
    try:
        from pixlearn.classical.forest import compile_forest

        return compile_forest(estimator)
    except ImportError:
        logger.info("numba is not installed: random forests predict through scikit-learn")
        return None
    except ValueError as exc:
        logger.info("forest not compiled (%s): predicting through scikit-learn", exc)
        return None


def predict_stack(
    estimator: Any,
    stack: np.ndarray,
    n_classes: int,
    *,
    n_jobs: int = -1,
    labels: bool = False,
    compiled: Any | None = None,
) -> np.ndarray:
    """Class probabilities (or the most probable class) of every pixel of a feature-major stack.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
        Trained on class indices ``0..K-1`` (``classes_`` may lack some).
    stack : ndarray of shape (F, ...), float32
        As :func:`pixlearn.classical.features.compute_features_block` with ``feature_axis="first"``.
    n_classes : int
        ``K``, the number of output channels.
    n_jobs : int
        Threads (``-1``: all cores).
    labels : bool
        Return the arg-max class instead. For forests this stops early, exactly, for pixels
        whose class the remaining trees can no longer change.
    compiled : CompiledForest, optional
        :func:`compile_forest_or_none` of `estimator`, reused across calls; compiled here
        when ``None`` and `estimator` is a forest.

    Returns
    -------
    probabilities : ndarray of shape (..., K), float32
        Rows sum to 1; classes absent from training get 0.
    labels : ndarray of shape (...), int64
        With ``labels=True``: ``argmax`` of the probabilities (the first class on exact ties
        of the float32 sums when the forest is evaluated in full).
    """
    n_feat = stack.shape[0]
    spatial = stack.shape[1:]
    flat = stack.reshape(n_feat, -1)
    classes = np.asarray(estimator.classes_, dtype=np.int64)
    if compiled is None:
        compiled = compile_forest_or_none(estimator)
    if compiled is not None:  # numba kernels; flat.T is a (pixels, features) view, no copy
        from pixlearn.classical.forest import predict_forest, predict_forest_labels

        if labels:
            return classes[predict_forest_labels(compiled, flat.T, n_threads=n_threads(n_jobs))].reshape(spatial)
        out = np.zeros((flat.shape[1], n_classes), np.float32)
        out[:, classes] = predict_forest(compiled, flat.T, n_threads=n_threads(n_jobs))
        return out.reshape(spatial + (n_classes,))
    result = _predict_chunks(estimator, flat, n_classes, classes, labels, n_threads(n_jobs))
    return result.reshape(spatial) if labels else result.reshape(spatial + (n_classes,))


def _predict_chunks(estimator: Any, flat: np.ndarray, n_classes: int, classes: np.ndarray, labels: bool,
                    threads: int) -> np.ndarray:
    """:func:`predict_stack` without compiled kernels: (n, K) probabilities, or (n,) classes with
    `labels`, of the feature-major ``(F, n)`` `flat`, in chunks of pixels (on `threads` threads for
    forests, whose trees release the GIL)."""
    n = flat.shape[1]
    out = np.zeros((n, n_classes), np.float32)
    tables = _forest_tables(estimator)
    scale = np.float32(1.0 / len(tables)) if tables else np.float32(1.0)
    label_out = np.empty(n if labels and tables is not None else 0, np.int64)

    def run(start: int) -> None:
        x = np.ascontiguousarray(flat[:, start : start + _CHUNK].T)
        if labels and tables is not None:
            label_out[start : start + x.shape[0]] = classes[_forest_labels(tables, x)]
            return
        if tables is not None:
            acc = np.zeros((x.shape[0], len(classes)), np.float32)
            for tree, fractions in tables:
                acc += fractions[tree.apply(x)]
            acc *= scale
        else:
            acc = estimator.predict_proba(x).astype(np.float32)
        out[start : start + x.shape[0], classes] = acc

    starts = range(0, n, _CHUNK)
    if tables is None:  # SVM pipelines, gradient boosting: their own (OpenMP/BLAS) threads
        with threadpool_limits(limits=threads):
            for start in starts:
                run(start)
    elif threads > 1 and n > _CHUNK:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    if labels:
        return label_out if tables is not None else np.argmax(out, axis=1)
    return out


def _forest_labels(
    tables: list[tuple[Any, np.ndarray]], x: np.ndarray, group: int = 8
) -> np.ndarray:
    """Index into ``classes_`` of the forest's most probable class for each row of `x`.

    Exact early stop: trees are evaluated in groups, and a pixel leaves the active set once its
    lead over the runner-up exceeds the number of trees still to come (each tree adds at most 1
    to any class), so its arg-max can no longer change. Confident pixels skip most trees.
    """
    n_trees = len(tables)
    n, k = x.shape[0], tables[0][1].shape[1]
    votes = np.zeros((n, k), np.float32)
    active = np.arange(n)
    x_active, votes_active = x, votes.copy()
    for first in range(0, n_trees, group):
        for tree, fractions in tables[first : first + group]:
            votes_active += fractions[tree.apply(x_active)]
        remaining = n_trees - min(n_trees, first + group)
        if remaining == 0:
            break
        if k == 2:
            lead = np.abs(votes_active[:, 0] - votes_active[:, 1])
        else:
            top = np.partition(votes_active, k - 2, axis=1)
            lead = top[:, -1] - top[:, -2]
        settled = lead > remaining + 1e-3  # margin for float32 rounding of the sums
        if settled.any():
            votes[active[settled]] = votes_active[settled]
            keep = ~settled
            active, x_active, votes_active = active[keep], x_active[keep], votes_active[keep]
            if active.size == 0:
                break
    votes[active] = votes_active
    return np.argmax(votes, axis=1)

