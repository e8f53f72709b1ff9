"""What a memory budget allows when a pixel classifier is trained: :func:`training_plan`.

Training holds, besides the interpreter, the libraries and the images and targets themselves
(what the process holds when fitting starts, measured then):

* one **feature block** at a time while the features of the training pixels are gathered: the
  filters' working arrays, :data:`FILTER_BYTES_PER_PIXEL` per pixel of the block with its halo
  (features are picked at the training pixels as they are computed,
  :func:`pixlearn.classical.features.compute_features_at`);
* the **training samples**: their features (4 bytes each), targets and weights, and the bootstrap
  and splitter arrays of each tree being grown (:func:`sample_bytes`);
* the **forest**: a node per split and per leaf, at most ``2 * 0.64 * n / min_samples_leaf`` per
  tree grown on ``n`` samples (a bootstrap holds about 63 % of them; fewer below ``max_depth``),
  each held twice at the end (the estimator and its copy as model-file arrays, or the compiled
  forest when predicting) (:func:`forest_bytes_per_sample`).

A quarter of what is left of the budget goes to feature blocks (their shape follows from it,
:func:`pixlearn.data.blocks.core_shape_for_budget`), the rest to samples and forest, which bounds
the number of training pixels. The model the plan allows also fits the same budget when it
predicts. The numbers are upper bounds measured with scikit-learn 1.x.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pixlearn.classical.config import ClassifierConfig
from pixlearn.data.blocks import core_shape_for_budget

__all__ = ["FILTER_BYTES_PER_PIXEL", "TrainingPlan", "forest_bytes_per_sample", "sample_bytes", "training_plan"]

#: Peak working memory of the filter bank per pixel of a block, context included (measured: about
#: 90-110 bytes for the default filters in 3D).
FILTER_BYTES_PER_PIXEL = 128.0
#: scikit-learn's node record (children, feature, threshold, impurity, counts: 64 bytes).
NODE_BYTES = 64.0
#: Share of what is left of the budget that goes to feature blocks.
BLOCK_SHARE = 0.25
#: Share of a bootstrap sample that is distinct rows (1 - 1/e, with a margin).
BOOTSTRAP_UNIQUE = 0.64


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What a budget allows: the training pixels and the feature blocks.

    Attributes
    ----------
    max_samples : int
        Training pixels in all, at most.
    block_shapes : tuple of tuple of int
        Core shape of the feature blocks of each image.
    """

    max_samples: int
    block_shapes: tuple[tuple[int, ...], ...]


def sample_bytes(n_features: int, n_threads: int) -> float:
    """Memory per training sample while the forest is fitted, besides the trees.

    Its features (float32), the targets and class weights (float64 each), and per tree being
    grown (one per thread) the bootstrap counts and the splitter's index and value arrays.

    Examples
    --------
    >>> sample_bytes(61, 2)
    388.0
    """
    return 4.0 * n_features + 24.0 + 60.0 * max(1, n_threads)


def forest_bytes_per_sample(clf_cfg: ClassifierConfig, n_classes: int, n_samples: int | None = None) -> float:
    """Upper bound of the memory of the fitted forest per training sample (0 for other methods).

    Parameters
    ----------
    clf_cfg : ClassifierConfig
    n_classes : int
    n_samples : int, optional
        Training samples; with ``rf.max_depth``, a tree has at most ``2 ** (max_depth + 1)``
        nodes, which bounds the forest below the per-sample figure for large `n_samples`.

    Returns
    -------
    bytes : float
        Twice (estimator, and model-file arrays or compiled forest) the node records and class
        counts of at most ``2 * 0.64 / min_samples_leaf`` nodes per sample and tree.

    Examples
    --------
    >>> from pixlearn.classical.config import ForestConfig
    >>> forest_bytes_per_sample(ClassifierConfig(rf=ForestConfig(n_estimators=10, min_samples_leaf=4)), 5)
    665.6
    """
    if clf_cfg.method != "rf":
        return 0.0
    rf = clf_cfg.rf
    nodes = 2.0 * BOOTSTRAP_UNIQUE / rf.min_samples_leaf
    if rf.max_depth is not None and n_samples:
        nodes = min(nodes, 2.0 ** (rf.max_depth + 1) / n_samples)
    return 2.0 * rf.n_estimators * nodes * (NODE_BYTES + 8.0 * n_classes)


def training_plan(
    budget: float,
    held: float,
    image_shapes: Sequence[Sequence[int]],
    halo: Sequence[int],
    n_features: int,
    n_classes: int,
    clf_cfg: ClassifierConfig,
    n_threads: int,
) -> TrainingPlan:
    """Split a training budget between feature blocks and training samples.

    Parameters
    ----------
    budget : float
        Bytes the whole process may hold.
    held : float
        Bytes it holds already (interpreter, libraries, images, targets).
    image_shapes : sequence of sequence of int
        Spatial shape of each training image.
    halo : sequence of int
        Feature halo per axis.
    n_features, n_classes : int
    clf_cfg : ClassifierConfig
    n_threads : int
        Threads fitting the forest (trees grown at once).

    Returns
    -------
    plan : TrainingPlan
        With no room left (``held >= budget``), the smallest blocks and 2 samples per class.

    Examples
    --------
    >>> from pixlearn.classical.config import ForestConfig
    >>> shallow = ClassifierConfig(rf=ForestConfig(max_depth=12))
    >>> plan = training_plan(2 * 2**30, 300 * 2**20, [(15, 1024, 1024)], (5, 46, 46), 61, 5, shallow, 2)
    >>> plan.max_samples, plan.block_shapes  # trees of depth 12: the samples alone bound it
    (3437599, ((15, 342, 342),))
    >>> pure = ClassifierConfig(rf=ForestConfig(n_estimators=100, max_depth=None))  # the defaults of before
    >>> training_plan(2 * 2**30, 300 * 2**20, [(15, 1024, 1024)], (5, 46, 46), 61, 5, pure, 2).max_samples
    50891
    """
    room = max(0.0, float(budget) - float(held))
    blocks = BLOCK_SHARE * room
    shapes = tuple(core_shape_for_budget(s, halo, blocks, FILTER_BYTES_PER_PIXEL) for s in image_shapes)
    per_sample = sample_bytes(n_features, n_threads) + forest_bytes_per_sample(clf_cfg, n_classes)
    n = int((room - blocks) / per_sample)
    if clf_cfg.method == "rf" and clf_cfg.rf.max_depth is not None and n > 0:
        # a depth limit bounds every tree: solve again with the forest at its largest
        depth_nodes = 2.0 ** (clf_cfg.rf.max_depth + 1)
        forest = 2.0 * clf_cfg.rf.n_estimators * depth_nodes * (NODE_BYTES + 8.0 * n_classes)
        n = max(n, int((room - blocks - forest) / sample_bytes(n_features, n_threads)))
    return TrainingPlan(max(2 * n_classes, n), shapes)
