"""Evaluation: metrics as pure functions on arrays, and reports over folders of predictions.

This room imports NumPy/SciPy and :mod:`pixlearn.data` only (never torch, never a model).

Semantic segmentation (:mod:`pixlearn.metrics.semantic`)
    :func:`confusion_matrix`, :func:`pixel_accuracy`, :func:`iou`, :func:`dice`, and
    :func:`semantic_scores` / :func:`scores_from_confusion` returning :class:`SemanticScores`.
Instance segmentation (:mod:`pixlearn.metrics.instance`)
    :func:`matching` (optimal one-to-one matching of objects at an IoU threshold, as in the
    DSB2018 challenge and StarDist), :func:`matching_dataset`, :func:`aggregate_matchings` and
    :func:`average_precision`; :func:`matched_pairs` (which true object matched which predicted one).
Error analysis (:mod:`pixlearn.metrics.errors`, :mod:`pixlearn.metrics.dataset_errors`)
    :func:`image_errors` classifies every object left unmatched at IoU 0.5 as a miss, merge,
    split, poor localisation or spurious object (:data:`ERROR_CATEGORIES`; they sum to FP + FN),
    settings in :class:`ErrorConfig`, counts in :class:`ErrorCounts`; :func:`error_analysis`
    pools many images per group, by object size and overall (:class:`ErrorAnalysis`,
    :class:`GroupScores`, :class:`SizeBinScores`) and keeps the worst images;
    :func:`format_error_analysis` (:mod:`pixlearn.metrics.error_report`) renders its tables as text.
Touching objects (:mod:`pixlearn.metrics.touching`)
    :func:`touching_pairs` (true objects that share a boundary) and :func:`touching_separation` /
    :func:`touching_separation_dataset` (how many such pairs a prediction separates) returning
    :class:`TouchingSeparation`.
Restoration (:mod:`pixlearn.metrics.restoration`)
    :func:`psnr`, :func:`ssim`, :func:`nrmse`.
Classification (:mod:`pixlearn.metrics.classification`)
    :func:`classification_scores` returning :class:`ClassificationScores` (accuracy, balanced
    accuracy, macro and per-class precision/recall/F1, confusion matrix, one-vs-rest ROC AUC,
    expected calibration error); the parts as :func:`accuracy`, :func:`balanced_accuracy`,
    :func:`precision_recall_f1`, :func:`roc_auc_ovr`, :func:`expected_calibration_error` and
    :func:`reliability_bins`; a prediction table scored against a labels table or a folder per
    class by :func:`evaluate_class_predictions` (:mod:`pixlearn.metrics.classify_report`).
Reports over folders (:mod:`pixlearn.metrics.report`)
    :func:`evaluate_folders` pairs prediction and truth files by name and scores them;
    :func:`write_report` writes ``metrics.json`` and ``metrics.csv``;
    :func:`write_classification_report` writes classification scores (JSON, per-class,
    confusion matrix and reliability CSVs).

Every score is a Python ``int``/``float`` (never a NumPy scalar), so results dump to JSON.
Undefined per-class scores (a class absent from both images) are ``nan`` in arrays and ``None``
in :meth:`SemanticScores.to_dict`. The names listed in ``__all__`` are the public API; import
them from :mod:`pixlearn.metrics`.
"""

from __future__ import annotations

from pixlearn.metrics.classification import (
    ClassificationScores,
    accuracy,
    balanced_accuracy,
    classification_scores,
    expected_calibration_error,
    precision_recall_f1,
    reliability_bins,
    roc_auc_ovr,
)
from pixlearn.metrics.classify_report import ClassEvaluation, evaluate_class_predictions
from pixlearn.metrics.dataset_errors import ErrorAnalysis, GroupScores, SizeBinScores, error_analysis
from pixlearn.metrics.error_report import format_error_analysis
from pixlearn.metrics.errors import ERROR_CATEGORIES, ErrorConfig, ErrorCounts, ImageErrors, image_errors
from pixlearn.metrics.instance import (
    DEFAULT_IOU_THRESHOLDS,
    Matching,
    aggregate_matchings,
    average_precision,
    matched_pairs,
    matching,
    matching_dataset,
)
from pixlearn.metrics.report import evaluate_folders, evaluate_pairs, write_classification_report, write_report
from pixlearn.metrics.restoration import nrmse, psnr, scale_to_target, ssim
from pixlearn.metrics.semantic import (
    SemanticScores,
    confusion_matrix,
    dice,
    dice_from_confusion,
    iou,
    iou_from_confusion,
    pixel_accuracy,
    scores_from_confusion,
    semantic_scores,
)
from pixlearn.metrics.touching import (
    TouchingSeparation,
    touching_pairs,
    touching_separation,
    touching_separation_dataset,
)

__all__ = [
    "DEFAULT_IOU_THRESHOLDS",
    "ERROR_CATEGORIES",
    "ClassEvaluation",
    "ClassificationScores",
    "ErrorAnalysis",
    "ErrorConfig",
    "ErrorCounts",
    "GroupScores",
    "ImageErrors",
    "Matching",
    "SemanticScores",
    "SizeBinScores",
    "TouchingSeparation",
    "accuracy",
    "aggregate_matchings",
    "average_precision",
    "balanced_accuracy",
    "classification_scores",
    "confusion_matrix",
    "dice",
    "dice_from_confusion",
    "error_analysis",
    "evaluate_class_predictions",
    "evaluate_folders",
    "evaluate_pairs",
    "expected_calibration_error",
    "format_error_analysis",
    "image_errors",
    "iou",
    "iou_from_confusion",
    "matched_pairs",
    "matching",
    "matching_dataset",
    "nrmse",
    "pixel_accuracy",
    "precision_recall_f1",
    "psnr",
    "reliability_bins",
    "roc_auc_ovr",
    "scale_to_target",
    "scores_from_confusion",
    "semantic_scores",
    "ssim",
    "touching_pairs",
    "touching_separation",
    "touching_separation_dataset",
    "write_classification_report",
    "write_report",
]
