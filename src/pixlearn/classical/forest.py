"""Exact, cache-friendly inference for fitted scikit-learn random forests (numba kernels).

:func:`compile_forest` copies the trees of a fitted ``RandomForestClassifier`` (or
``ExtraTreesClassifier``) into one flat table of 16-byte nodes, ``int32 feature | float32
threshold | int32 left | int32 extra``, where the right child is always ``left + 1`` and the
nodes of each tree are renumbered depth first, heavier (more training weight) child first, so
that the path most pixels take lies in few cache lines. A leaf points to itself (``left`` is its
own index, threshold ``+inf``) and keeps the row of its class fractions in ``extra``; an inner
node keeps there whether a missing value (NaN) goes left, as scikit-learn decides.

:func:`predict_forest` and :func:`predict_forest_labels` copy a chunk of pixels (``CHUNK``,
pixel-major) and apply the trees to it one after another, so that each tree (~16 bytes x 10^4
nodes) stays in cache while every pixel of the chunk walks it. Blocks of pixels
(``forest_kernels.LANES``) walk a tree together, a few levels per pass with no test in the loop
(a leaf's child step returns the leaf), so that their memory loads overlap (pointer chasing is
bound by latency, not arithmetic). Chunks with a missing value (NaN) take the slower walk that
tests for leaves: ``GROUP`` pixels at a time, one level each per pass, a pixel that reaches its
leaf handing its slot to the next. Chunks are spread over threads (the kernels release the GIL).

Results are the same as ``predict_proba``: thresholds are rounded down to float32, which decides
every float32 feature value exactly as scikit-learn's float64 comparison does; class fractions
are summed tree by tree in float32 and scaled by ``1 / n_trees`` at the end (within 1e-6 of
scikit-learn's float64 average).

The kernels are in :mod:`pixlearn.classical.forest_kernels`, imported (and so numba) at first
use: without numba :func:`compile_forest` raises ``ImportError``.
The compiled table is plain arrays rebuilt from the estimator; it is never stored.
"""

from __future__ import annotations

import dataclasses
import os
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["CompiledForest", "compile_forest", "node_fractions", "predict_forest", "predict_forest_labels"]

CHUNK = 16384  # pixels (copied pixel-major) that every tree is applied to in turn
GROUP = 8  # pixels walked through a tree together, one level per pass
TREE_GROUP = 8  # trees between early-stop checks of label prediction

@dataclasses.dataclass(frozen=True)
class CompiledForest:
    """A fitted forest as flat arrays (see the module docstring for the node layout).

    Parameters
    ----------
    nodes : ndarray of shape (n_nodes, 4), int32
        ``feature, threshold bits, left, extra`` per node, trees one after another.
    thresholds : ndarray of shape (n_nodes, 4), float32
        The same memory as `nodes` seen as float32 (column 1 is the threshold).
    roots : ndarray of shape (n_trees,), int64
        Index of each tree's root in `nodes`.
    values : ndarray of shape (n_leaves, C), float32
        Class fractions of every leaf (rows sum to 1, or 0 for an empty leaf).
    n_features : int
        Features the forest was fitted on.
    classes : ndarray of shape (C,)
        ``classes_`` of the estimator: column ``j`` of the output is class ``classes[j]``.
    """

    nodes: np.ndarray
    thresholds: np.ndarray
    roots: np.ndarray
    values: np.ndarray
    n_features: int
    classes: np.ndarray

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self.roots.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of output columns ``C`` (``len(classes_)``)."""
        return int(self.values.shape[1])


def _kernels() -> types.ModuleType:
    """The numba kernels, :mod:`pixlearn.classical.forest_kernels`, imported at first use.

    Why a module and no cache of ours: numba compiles a decorated function on its first call (or
    loads it from its on-disk cache) and keeps the machine code in the function's dispatcher,
    and Python keeps an imported module in ``sys.modules``. Importing the kernels here therefore
    compiles them lazily and once per process, with no lock, no memo and no module global
    rewritten; without numba the import raises ``ImportError``, which callers turn into the
    scikit-learn fallback.
    """
    from pixlearn.classical import forest_kernels  # ImportError without numba

    return forest_kernels


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """Largest float32 ``<=`` each float64: ``x <= t`` equals ``x <= t32`` for float32 ``x``."""
    with np.errstate(over="ignore"):
        t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def compile_forest(estimator: Any, *, order: str = "depth") -> CompiledForest:
    """Copy a fitted scikit-learn forest classifier into a :class:`CompiledForest`.

    Parameters
    ----------
    estimator : fitted RandomForestClassifier or ExtraTreesClassifier
        Single output (``n_outputs_ == 1``).
    order : {"depth", "breadth"}
        Node numbering: depth first with the heavier child's subtree first (default), or
        level by level. Siblings are adjacent either way. Does not change results.

    Returns
    -------
    compiled : CompiledForest

    Raises
    ------
    ImportError
        numba is not installed.
    ValueError
        Not a fitted single-output forest of decision trees.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    >>> rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, [0, 0, 1, 1])
    >>> compile_forest(rf).n_trees
    3
    """
    kernels = _kernels()
    if order not in ("depth", "breadth"):
        raise ValueError(f"order must be 'depth' or 'breadth', got {order!r}")
    trees = getattr(estimator, "estimators_", None)
    if not isinstance(trees, list) or not trees or not all(hasattr(t, "tree_") for t in trees):
        raise ValueError("compile_forest needs a fitted forest of decision trees")
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise ValueError("compile_forest supports single-output forests only")
    if sum(int(t.tree_.node_count) for t in trees) >= 2**31 - 1:
        raise ValueError("forest too large for 32-bit node indices")
    n_classes = len(estimator.classes_)
    parts, value_parts, roots = [], [], []
    offset = leaf_offset = 0
    for tree in trees:
        block, fractions = _tree_table(tree.tree_, kernels, order, offset, leaf_offset)
        parts.append(block)
        value_parts.append(fractions)
        roots.append(offset)
        offset += block.shape[0]
        leaf_offset += fractions.shape[0]
    nodes = np.ascontiguousarray(np.concatenate(parts))
    values = np.ascontiguousarray(np.concatenate(value_parts).reshape(-1, n_classes))
    return CompiledForest(
        nodes=nodes,
        thresholds=nodes.view(np.float32),
        roots=np.asarray(roots, np.int64),
        values=values,
        n_features=int(estimator.n_features_in_),
        classes=np.asarray(estimator.classes_),
    )


def _tree_table(t: Any, kernels: types.ModuleType, order: str, offset: int,
                leaf_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """One scikit-learn ``tree_`` as rows of the node table (nodes renumbered, indices shifted by
    `offset`, leaf rows by `leaf_offset`) and the float32 class fractions of its leaves."""
    left = np.asarray(t.children_left, np.int64)
    right = np.asarray(t.children_right, np.int64)
    new = kernels.layout_nodes(left, right, np.asarray(t.weighted_n_node_samples, np.float64), order == "depth")
    n = left.shape[0]
    is_leaf = left < 0
    old = np.empty(n, np.int64)
    old[new] = np.arange(n)  # old index of every new slot
    block = np.empty((n, 4), np.int32)
    leaf_rows = np.cumsum(is_leaf) - 1 + leaf_offset
    nl = is_leaf[old]
    block[:, 0] = np.where(nl, 0, t.feature[old])
    thresholds = _float32_at_most(np.asarray(t.threshold, np.float64)[old])
    thresholds[nl] = np.inf
    block[:, 1] = thresholds.view(np.int32)
    block[:, 2] = np.where(nl, np.arange(n) + offset, new[np.where(nl, 0, left[old])] + offset)
    missing_left = getattr(t, "missing_go_to_left", None)
    missing_left = np.zeros(n, np.int32) if missing_left is None else np.asarray(missing_left, np.int32)
    block[:, 3] = np.where(nl, leaf_rows[old], missing_left[old])
    return block, node_fractions(t)[is_leaf]


def node_fractions(t: Any) -> np.ndarray:
    """Class fractions, float32, of every node of a scikit-learn ``tree_`` (rows sum to 1, or 0 for
    a node without weight)."""
    value = np.asarray(t.value[:, 0, :], np.float64)
    total = value.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return (value / total).astype(np.float32)


def _rows(compiled: CompiledForest, features: np.ndarray) -> np.ndarray:
    """`features` as an (n, F) float32 array, C- or Fortran-ordered (no copy when it is)."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != compiled.n_features:
        raise ValueError(f"features must have shape (n, {compiled.n_features}), got {features.shape}")
    if features.dtype != np.float32 or not (features.flags.c_contiguous or features.flags.f_contiguous):
        features = np.ascontiguousarray(features, np.float32)
    return features


def _run(kernel: Any, n: int, n_threads: int | None, args: tuple[Any, ...], tail: tuple[Any, ...]) -> None:
    """Call ``kernel(*args, start, stop, *tail)`` on balanced row ranges in a thread pool."""
    threads = max(1, os.cpu_count() or 1) if n_threads is None or n_threads < 1 else int(n_threads)
    threads = min(threads, max(1, n // 1024))
    pieces = -(-max(threads, -(-n // CHUNK)) // threads) * threads  # a multiple of threads
    step = -(-n // pieces)
    if threads == 1:
        kernel(*args, 0, n, *tail)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda s: kernel(*args, s, min(s + step, n), *tail), range(0, n, step)))


def predict_forest(
    compiled: CompiledForest,
    features: np.ndarray,
    *,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Class probabilities of a compiled forest: the same values as ``predict_proba``.

    Parameters
    ----------
    compiled : CompiledForest
    features : ndarray of shape (n, F)
        Float32 is used as is, C- or Fortran-ordered (the transpose of a feature-major stack
        costs no copy); other dtypes are converted (scikit-learn also predicts on float32).
    out : ndarray of shape (n, C), float32, optional
        C-contiguous destination.
    n_threads : int, optional
        Threads (default: all cores). Does not change results.

    Returns
    -------
    probabilities : ndarray of shape (n, C), float32
        Column ``j`` is class ``compiled.classes[j]``; within 1e-6 of ``predict_proba``.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    >>> rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, [0, 0, 1, 1])
    >>> bool(np.allclose(predict_forest(compile_forest(rf), x), rf.predict_proba(x), atol=1e-6))
    True
    """
    x = _rows(compiled, features)
    n = x.shape[0]
    shape = (n, compiled.n_classes)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    if n == 0:
        return out
    kernels = _kernels()
    c = compiled
    _run(kernels.sum_fractions, n, n_threads, (x, c.nodes, c.thresholds, c.roots, c.values, out), (min(CHUNK, n), GROUP))
    out *= np.float32(1.0 / c.n_trees)
    return out


def predict_forest_labels(
    compiled: CompiledForest, features: np.ndarray, *, n_threads: int | None = None
) -> np.ndarray:
    """Column index of the most probable class, skipping trees that cannot change it (exact).

    Trees are applied in groups of ``TREE_GROUP``; a pixel stops once its lead over the
    runner-up exceeds the number of trees left (each adds at most 1 to a class's sum).

    Parameters
    ----------
    compiled : CompiledForest
    features : ndarray of shape (n, F)
        As for :func:`predict_forest`.
    n_threads : int, optional
        Threads (default: all cores).

    Returns
    -------
    labels : ndarray of shape (n,), int64
        Index into ``compiled.classes``: ``argmax`` of :func:`predict_forest` (first column
        on exact ties of the float32 sums).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    >>> rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, [0, 0, 1, 1])
    >>> predict_forest_labels(compile_forest(rf), x).tolist()
    [0, 0, 1, 1]
    """
    x = _rows(compiled, features)
    n = x.shape[0]
    out = np.empty(n, np.int64)
    if n == 0:
        return out
    kernels = _kernels()
    c = compiled
    _run(
        kernels.forest_labels, n, n_threads,
        (x, c.nodes, c.thresholds, c.roots, c.values, out), (min(CHUNK, n), GROUP, TREE_GROUP),
    )
    return out
