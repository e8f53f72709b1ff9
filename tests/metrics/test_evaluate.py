"""Evaluation of prediction folders against ground truth: rows, aggregates, report files, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pixlearn.data.images import write_image
from pixlearn.errors import PixlearnError
from pixlearn.metrics import confusion_matrix, matching, psnr, ssim
from pixlearn.metrics.report import evaluate_folders, evaluate_pairs, write_report


def _write_pairs(tmp_path, preds: dict, truths: dict):
    pred_dir, truth_dir = tmp_path / "pred", tmp_path / "truth"
    for name, arr in preds.items():
        write_image(pred_dir / f"{name}.tif", arr)
    for name, arr in truths.items():
        write_image(truth_dir / f"{name}.tif", arr)
    return pred_dir, truth_dir


def test_semantic_folders_and_report(tmp_path) -> None:
    rng = np.random.default_rng(0)
    truth_a = rng.integers(0, 3, (20, 24)).astype(np.uint8)
    truth_b = rng.integers(0, 2, (5, 12, 10)).astype(np.uint8)  # 3D, class 2 absent
    pred_a = np.where(rng.random(truth_a.shape) < 0.8, truth_a, 0).astype(np.uint8)
    pred_b = truth_b.copy()
    pred_dir, truth_dir = _write_pairs(
        tmp_path, {"a": pred_a, "b": pred_b}, {"a": truth_a, "b": truth_b}
    )
    result = evaluate_folders(pred_dir, truth_dir, "semantic")
    assert result["kind"] == "semantic" and result["n_images"] == 2 and result["n_classes"] == 3
    assert [r["name"] for r in result["images"]] == ["a", "b"]
    expected = confusion_matrix(truth_a, pred_a, 3) + confusion_matrix(truth_b, pred_b, 3)
    assert result["confusion_matrix"] == expected.tolist()
    agg = result["aggregate"]
    assert agg["pixel_accuracy"] == pytest.approx(np.trace(expected) / expected.sum())
    row_b = result["images"][1]
    assert row_b["pixel_accuracy"] == 1.0 and row_b["iou_2"] is None  # absent class -> null
    json.dumps(result, allow_nan=False)

    paths = write_report(result, tmp_path / "report")
    assert sorted(p.name for p in paths.values()) == [
        "confusion_matrix.csv", "metrics.csv", "metrics.json"
    ]
    assert json.loads(paths["json"].read_text()) == result
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["a", "b"] and rows[1]["iou_2"] == ""
    assert float(rows[0]["pixel_accuracy"]) == pytest.approx(result["images"][0]["pixel_accuracy"])
    with open(paths["confusion_matrix"], newline="") as fh:
        matrix = list(csv.reader(fh))
    assert matrix[0] == ["true\\pred", "0", "1", "2"]
    assert [[int(v) for v in r[1:]] for r in matrix[1:]] == expected.tolist()
    assert not list((tmp_path / "report").glob(".*partial"))


def test_semantic_n_classes_and_ignore(tmp_path) -> None:
    truth = np.array([[0, 1, 255], [1, 1, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    pred_dir, truth_dir = _write_pairs(tmp_path, {"x": pred}, {"x": truth})
    result = evaluate_folders(pred_dir, truth_dir, "semantic", ignore=255)
    assert result["n_classes"] == 2
    assert result["aggregate"]["n_pixels"] == 4
    assert result["aggregate"]["pixel_accuracy"] == 0.75
    with pytest.raises(PixlearnError, match=r"x\.tif.*class value 255 is outside the 2 classes"):
        evaluate_folders(pred_dir, truth_dir, "semantic", n_classes=2)


def test_instances_perfect_and_partial(tmp_path) -> None:
    truth = np.zeros((32, 32), np.uint16)
    truth[2:10, 2:10] = 1
    truth[12:20, 4:12] = 2
    truth[20:30, 20:30] = 3
    relabelled = np.select([truth == 1, truth == 2, truth == 3], [9, 4, 7], 0).astype(np.uint16)
    partial = np.roll(np.where(truth == 3, 0, truth), 2, axis=1)  # 3 missed, 1 and 2 shifted
    pred_dir, truth_dir = _write_pairs(
        tmp_path, {"good": relabelled, "part": partial}, {"good": truth, "part": truth}
    )
    result = evaluate_folders(pred_dir, truth_dir, "instances")
    rows = {r["name"]: r for r in result["images"]}
    assert rows["good"]["accuracy"] == 1.0 and rows["good"]["average_precision"] == 1.0
    m = matching(truth, partial)
    assert (rows["part"]["tp"], rows["part"]["fn"]) == (m.tp, m.fn) == (2, 1)
    agg = result["aggregate"]
    assert agg["iou_thresh"] == 0.5 and (agg["tp"], agg["fp"], agg["fn"]) == (5, 0, 1)
    assert agg["accuracy"] == pytest.approx(5 / 6)
    assert len(result["per_threshold"]) == 10 and len(agg["accuracy_per_threshold"]) == 10
    assert agg["average_precision"] == pytest.approx(np.mean(agg["accuracy_per_threshold"]))
    # shifted objects have IoU 0.6: matched up to 0.6, then 2 fp + 3 fn in "part"
    assert agg["accuracy_per_threshold"][:3] == pytest.approx([5 / 6] * 3)
    assert agg["accuracy_per_threshold"][3] == pytest.approx(3 / 8)
    paths = write_report(result, tmp_path / "out")
    assert "confusion_matrix" not in paths and paths["csv"].exists()


def test_restore_pairs(tmp_path) -> None:
    rng = np.random.default_rng(2)
    target = rng.random((5, 16, 18)).astype(np.float32)
    output = (target + rng.normal(0, 0.05, target.shape)).astype(np.float32)
    write_image(tmp_path / "t.tif", target, axes="ZYX")
    write_image(tmp_path / "o.tif", output, axes="ZYX")
    write_image(tmp_path / "same.tif", target, axes="ZYX")
    result = evaluate_pairs(
        [tmp_path / "o.tif", tmp_path / "same.tif"], [tmp_path / "t.tif"] * 2, "restore"
    )
    first, second = result["images"]
    assert first["psnr"] == pytest.approx(psnr(target, output))
    assert first["ssim"] == pytest.approx(ssim(target, output))
    assert second["psnr"] is None and second["ssim"] == pytest.approx(1.0)  # inf -> null
    assert result["aggregate"]["psnr"] == pytest.approx(first["psnr"])
    assert result["aggregate"]["n_finite_psnr"] == 1
    json.dumps(result, allow_nan=False)


def test_shape_mismatch_names_the_file(tmp_path) -> None:
    pred_dir, truth_dir = _write_pairs(
        tmp_path, {"img": np.zeros((8, 9), np.uint8)}, {"img": np.zeros((8, 8), np.uint8)}
    )
    for kind in ("semantic", "instances", "restore"):
        with pytest.raises(PixlearnError, match=r"pred.img\.tif: prediction has shape"):
            evaluate_folders(pred_dir, truth_dir, kind)


def test_missing_partner_and_bad_arguments(tmp_path) -> None:
    pred_dir, truth_dir = _write_pairs(
        tmp_path,
        {"a": np.zeros((4, 4), np.uint8), "b": np.zeros((4, 4), np.uint8)},
        {"a": np.zeros((4, 4), np.uint8)},
    )
    with pytest.raises(PixlearnError, match="b"):
        evaluate_folders(pred_dir, truth_dir, "semantic")
    with pytest.raises(ValueError, match="kind"):
        evaluate_pairs([pred_dir / "a.tif"], [truth_dir / "a.tif"], "panoptic")
    with pytest.raises(ValueError, match="2 predictions but 1"):
        evaluate_pairs([pred_dir / "a.tif", pred_dir / "b.tif"], [truth_dir / "a.tif"])
    with pytest.raises(PixlearnError, match="no such file"):
        evaluate_pairs([tmp_path / "nope.tif"], [truth_dir / "a.tif"])


def test_restore_scale_invariant(tmp_path):
    rng = np.random.default_rng(5)
    truth = rng.random((24, 24)).astype(np.float32)
    for sub in ("pred", "truth"):
        (tmp_path / sub).mkdir()
    write_image(tmp_path / "truth" / "a.tif", truth)
    write_image(tmp_path / "pred" / "a.tif", (200 * truth + 30).astype(np.float32))  # same image, other scale
    raw = evaluate_folders(tmp_path / "pred", tmp_path / "truth", kind="restore")
    fitted = evaluate_folders(tmp_path / "pred", tmp_path / "truth", kind="restore", scale_invariant=True)
    assert raw["aggregate"]["psnr"] < 0
    assert fitted["aggregate"]["ssim"] > 0.999 and fitted["aggregate"]["nrmse"] < 1e-4
