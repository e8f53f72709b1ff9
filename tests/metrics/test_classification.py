"""Classification scores: hand-computed cases, perfect self-agreement, and scikit-learn agreement."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from pixlearn.metrics import (
    ClassificationScores,
    accuracy,
    balanced_accuracy,
    classification_scores,
    expected_calibration_error,
    precision_recall_f1,
    reliability_bins,
    roc_auc_ovr,
)
from pixlearn.metrics import classification as classification_metrics


def test_doctests() -> None:
    result = doctest.testmod(classification_metrics)
    assert result.attempted >= 8 and result.failed == 0


def test_hand_computed_three_classes() -> None:
    # truth 0 0 0 1 1 2 ; prediction 0 0 1 1 2 2
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    s = classification_scores(y_true, y_pred, class_names=["a", "b", "c"])
    assert s.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    assert s.support == (3, 2, 1)
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.precision == pytest.approx((1.0, 0.5, 0.5))
    assert s.recall == pytest.approx((2 / 3, 0.5, 1.0))
    assert s.f1 == pytest.approx((0.8, 0.5, 2 / 3))
    assert s.balanced_accuracy == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert s.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s.roc_auc is None and s.expected_calibration_error is None
    assert [row["class"] for row in s.per_class()] == ["a", "b", "c"]


def test_perfect_prediction_scores_one() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    probabilities = np.eye(3)[y]
    s = classification_scores(y, probabilities=probabilities)
    assert s.accuracy == s.balanced_accuracy == s.macro_f1 == s.macro_roc_auc == 1.0
    assert s.expected_calibration_error == 0.0
    assert s.class_names == ("0", "1", "2")


def test_absent_class_is_none_and_left_out_of_the_macro_mean() -> None:
    s = classification_scores(np.array([0, 0, 1]), np.array([0, 0, 1]), class_names=["a", "b", "never"])
    assert s.f1 == (1.0, 1.0, None)
    assert s.macro_f1 == 1.0
    # a class predicted but never true: precision 0, recall 0; balanced accuracy ignores it
    p, r, f = precision_recall_f1(np.array([[1, 1], [0, 0]]))
    assert p.tolist() == [1.0, 0.0] and r.tolist() == [0.5, 0.0] and f[1] == 0.0
    assert balanced_accuracy(np.array([0, 0]), np.array([0, 1]), n_classes=2) == 0.5


def test_to_dict_is_json_safe() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    probabilities = rng.dirichlet(np.ones(3), 40)
    s = classification_scores(y, probabilities=probabilities, class_names=["x", "y", "z"])
    data = json.loads(json.dumps(s.to_dict()))
    assert data["class_names"] == ["x", "y", "z"] and len(data["confusion"]) == 3
    assert isinstance(s, ClassificationScores)


def test_agrees_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, 300)
    probabilities = rng.dirichlet(np.ones(4), 300)
    probabilities[np.arange(300), y_true] += rng.uniform(0, 0.6, 300)  # informative, with ties none
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    y_pred = probabilities.argmax(axis=1)
    s = classification_scores(y_true, y_pred, probabilities)
    assert s.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert s.balanced_accuracy == pytest.approx(metrics.balanced_accuracy_score(y_true, y_pred))
    assert s.macro_f1 == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert s.macro_precision == pytest.approx(metrics.precision_score(y_true, y_pred, average="macro"))
    assert s.macro_recall == pytest.approx(metrics.recall_score(y_true, y_pred, average="macro"))
    assert np.array(s.confusion).tolist() == metrics.confusion_matrix(y_true, y_pred).tolist()
    expected_auc = metrics.roc_auc_score(y_true, probabilities, multi_class="ovr", average=None)
    np.testing.assert_allclose(np.array(s.roc_auc, dtype=float), expected_auc, rtol=1e-12)
    assert s.macro_roc_auc == pytest.approx(float(np.mean(expected_auc)))


def test_roc_auc_with_ties_and_undefined_class() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([[0.5, 0.5, 0.0]] * 4)  # all tied: AUC one half; class 2 never true
    assert roc_auc_ovr(y, scores) == [0.5, 0.5, None]
    assert roc_auc_ovr(np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]])) == [1.0, 1.0]


def test_expected_calibration_error_by_hand() -> None:
    # two samples at confidence 0.95 (both right) and two at 0.6 (one right):
    # bin (0.9, 1]: |1 - 0.95| ; bin (0.5, 0.6]: |0.5 - 0.6| ; each holds half the samples
    probabilities = np.array([[0.95, 0.05], [0.05, 0.95], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(y, probabilities) == pytest.approx(0.5 * 0.05 + 0.5 * 0.1)
    counts, confidence, hits = reliability_bins(y, probabilities, n_bins=10)
    assert counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert confidence[9] == pytest.approx(0.95) and hits[5] == 0.5 and np.isnan(hits[0])


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="y_pred or probabilities"):
        classification_scores(np.array([0, 1]))
    with pytest.raises(ValueError, match="no samples"):
        accuracy(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(ValueError, match="probabilities must have shape"):
        classification_scores(np.array([0, 1]), probabilities=np.ones((2, 3)), class_names=["a", "b"])
    with pytest.raises(ValueError):
        classification_scores(np.array([0, 5]), np.array([0, 1]), class_names=["a", "b"])


def test_write_classification_report(tmp_path) -> None:
    import csv

    from pixlearn.metrics import write_classification_report

    y = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.95, 0.05], [0.4, 0.6], [0.2, 0.8], [0.1, 0.9]])
    s = classification_scores(y, probabilities=probabilities, class_names=["a", "b"])
    paths = write_classification_report(s, tmp_path / "out", y_true=y, probabilities=probabilities, n_bins=5)
    assert set(paths) == {"json", "per_class", "confusion_matrix", "reliability"}
    assert json.loads(paths["json"].read_text())["confusion"] == [[1, 1], [0, 2]]
    confusion = list(csv.reader(paths["confusion_matrix"].open()))
    assert confusion == [["true\\pred", "a", "b"], ["a", "1", "1"], ["b", "0", "2"]]
    per_class = list(csv.DictReader(paths["per_class"].open()))
    assert [row["class"] for row in per_class] == ["a", "b"] and per_class[1]["recall"] == "1.0"
    reliability = list(csv.DictReader(paths["reliability"].open()))
    assert len(reliability) == 5 and sum(int(r["count"]) for r in reliability) == 4
    assert reliability[0]["mean_confidence"] == ""  # empty bin
    only = write_classification_report(s, tmp_path / "plain")
    assert "reliability" not in only
    with pytest.raises(ValueError, match="both"):
        write_classification_report(s, tmp_path / "x", y_true=y)
