"""Object classification from the command line: train on round and elongated blobs, classify held-out
images, evaluate, and the house rules of predict's outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.data.images import read_labels, write_image

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "models" / "fixtures" / "v1"
CLASSES = ("elongated", "round")


def _blobs(seed: int, n_side: int = 4, cell: int = 24) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Round discs and elongated ellipses (either orientation) of equal brightness on a grid."""
    rng = np.random.default_rng(seed)
    shape = (cell * n_side, cell * n_side)
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    kinds: dict[int, str] = {}
    for index in range(n_side * n_side):
        kind = CLASSES[index % 2] if index < 2 else CLASSES[int(rng.integers(2))]
        r0 = cell * (index // n_side) + cell / 2 + rng.uniform(-1.5, 1.5)
        c0 = cell * (index % n_side) + cell / 2 + rng.uniform(-1.5, 1.5)
        a, b = (rng.uniform(4.0, 6.0),) * 2 if kind == "round" else (rng.uniform(8.0, 10.0), rng.uniform(2.5, 3.5))
        if kind == "elongated" and rng.random() < 0.5:
            a, b = b, a
        labels[((rows - r0) / a) ** 2 + ((cols - c0) / b) ** 2 <= 1] = index + 1
        kinds[index + 1] = kind
    image = np.where(labels > 0, 0.8, 0.15) + rng.normal(0, 0.05, shape)
    return (image * 255).clip(0, 255).astype(np.uint8), labels, kinds


def _write_table(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("objects")
    folders = {k: root / k for k in ("train", "train_labels", "test", "test_labels")}
    classes, truth, points = [], [], []
    for seed, split in ((0, "train"), (1, "train"), (2, "train"), (10, "test"), (11, "test")):
        image, labels, kinds = _blobs(seed)
        write_image(folders[split] / f"img{seed}.tif", image)
        write_image(folders[f"{split}_labels"] / f"img{seed}.tif", labels)
        table = classes if split == "train" else truth
        table += [[f"img{seed}.tif", i, k] for i, k in kinds.items()]
        if split == "train":
            for i, k in kinds.items():  # one point inside each object: its first pixel
                y, x = np.argwhere(labels == i)[0]
                points.append([f"img{seed}", y, x, k])
    return {**folders, "root": root,
            "classes": _write_table(root / "classes.csv", ["image", "object_id", "class"], classes),
            "points": _write_table(root / "points.csv", ["image", "y", "x", "class"], points),
            "truth": _write_table(root / "truth.csv", ["image", "object_id", "class"], truth)}


def _run(*argv: object) -> str:
    result = runner.invoke(app, [str(a) for a in argv])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def _train(data: dict[str, Path], model: Path, annotations: str = "classes", *extra: object) -> str:
    return _run("train", "--method", "rf", "--task", "objects", "--images", data["train"], "--labels",
                data["train_labels"], f"--{annotations}", data[annotations], "-o", model, "--n-estimators", 60, *extra)


@pytest.fixture(scope="module")
def model(data) -> Path:
    path = data["root"] / "objects.zip"
    assert "2 classes: elongated, round" in _train(data, path)
    return path


def test_info_shows_classes_measurements_and_settings(model) -> None:
    header = json.loads(_run("info", model))
    assert header["kind"] == "object-classifier"
    meta = header["model"]
    assert meta["class_names"] == list(CLASSES)
    assert meta["n_measurements"] == len(meta["feature_names"]) > 20
    assert meta["classifier"]["class_weight"] == "balanced" and meta["object_features"]["ring_px"] == 3
    assert header["estimator"]["type"] == "RandomForestClassifier" and "classifier.safetensors" in header["files"]


def test_predict_writes_tables_class_images_and_summary_and_evaluates_well(data, model, tmp_path) -> None:
    out = tmp_path / "out"
    assert "classified the objects of 2 image(s)" in _run("predict", model, data["test"], "--labels",
                                                         data["test_labels"], "-o", out)
    labels = read_labels(data["test_labels"] / "img10.tif")
    with open(out / "img10.objects.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["object_id"]) for r in rows] == list(range(1, 17))
    assert {"area", "eccentricity", "class", "probability", "p_round", "p_elongated"} <= set(rows[0])
    assert all(abs(float(r["p_round"]) + float(r["p_elongated"]) - 1) < 1e-5 for r in rows)
    class_image = read_labels(out / "img10.classes.tif")
    for r in rows:  # class index + 1 on each object's pixels, 0 on the background
        assert set(np.unique(class_image[labels == int(r["object_id"])])) == {CLASSES.index(r["class"]) + 1}
    assert not class_image[labels == 0].any()
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert [s["image"] for s in summary] == ["img10", "img11"]
    assert all(int(s["elongated"]) + int(s["round"]) == int(s["n_objects"]) == 16 for s in summary)
    scores = json.loads(_run("evaluate", "--kind", "classify", "--pred", out, "--truth", data["truth"]).split("\nreport:")[0])
    assert scores["n_samples"] == 32
    assert scores["accuracy"] >= 0.9 and scores["balanced_accuracy"] >= 0.9  # chance is 0.5
    assert scores["macro_roc_auc"] >= 0.95
    for name in ("metrics.json", "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png", "reliability.png"):
        assert (out / name).is_file(), name


def test_points_train_as_well_as_object_ids(data, tmp_path) -> None:
    _train(data, tmp_path / "points.zip", "points")
    out = tmp_path / "out"
    _run("predict", tmp_path / "points.zip", data["test"], "--labels", data["test_labels"], "-o", out)
    scores = json.loads(_run("evaluate", "--kind", "classify", "--pred", out, "--truth", data["truth"]).split("\nreport:")[0])
    assert scores["accuracy"] >= 0.9


def test_outputs_are_never_replaced_without_overwrite(data, model, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(model), str(data["test"]), "--labels", str(data["test_labels"]), "-o", str(out)]
    _run(*args)
    before = (out / "img10.objects.csv").read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    _run(*args, "--overwrite")
    assert (out / "img10.objects.csv").read_bytes() == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "img11.classes.tif").write_bytes(b"mine")
    refused = runner.invoke(app, [*args[:-1], str(foreign), "--overwrite"])
    assert refused.exit_code == 2 and "not written by pixlearn" in refused.output
    assert sorted(p.name for p in foreign.iterdir()) == ["img11.classes.tif"]  # nothing else written


def test_bad_inputs_are_one_line_and_write_nothing(data, model, tmp_path) -> None:
    missing = tmp_path / "labels"
    missing.mkdir()
    write_image(missing / "img10.tif", read_labels(data["test_labels"] / "img10.tif"))
    wrong = tmp_path / "wrong"
    write_image(wrong / "img10.tif", np.zeros((8, 8), np.uint16))
    write_image(wrong / "img11.tif", np.zeros((8, 8), np.uint16))
    cases = [
        (["--labels", missing], "img11.tif: has no label image"),
        (["--labels", wrong], "does not match its image"),
        ([], "--labels DIR or --segment MODEL"),
    ]
    for extra, fragment in cases:
        out = tmp_path / "never"
        result = runner.invoke(app, ["predict", str(model), str(data["test"]), "-o", str(out), *map(str, extra)])
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1 and fragment in errors[0], result.output
        assert not out.exists()
    bad = _write_table(tmp_path / "bad.csv", ["image", "object_id", "class"], [["img0", 99, "round"], ["img0", 1, "x"]])
    result = runner.invoke(app, ["train", "--task", "objects", "--images", str(data["train"]), "--labels",
                                 str(data["train_labels"]), "--classes", str(bad), "-o", str(tmp_path / "m.zip")])
    assert result.exit_code == 2 and "objects [99]" in result.output and not (tmp_path / "m.zip").exists()
    result = runner.invoke(app, ["train", "--method", "unet", "--task", "objects", "--images", str(data["train"]),
                                 "--labels", str(data["train_labels"]), "--classes", str(data["classes"]), "-o",
                                 str(tmp_path / "m.zip")])
    assert result.exit_code == 2 and "rf, svm or hgb" in result.output


def test_segment_makes_the_labels_in_the_same_command(data, model, tmp_path) -> None:
    out = tmp_path / "out"
    _run("predict", model, data["test"] / "img10.tif", "--segment", FIXTURES / "unet_instances_v1.zip", "-o", out)
    labels = read_labels(out / "img10.labels.tif")
    with open(out / "img10.objects.csv") as fh:
        ids = [int(r["object_id"]) for r in csv.DictReader(fh)]
    assert ids == sorted(set(np.unique(labels).tolist()) - {0})
    refused = runner.invoke(app, ["predict", str(model), str(data["test"]), "--segment",
                                  str(FIXTURES / "rf_v1.zip"), "-o", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "an instance model is needed" in refused.output


def test_the_python_api_trains_and_predicts_objects(data, tmp_path) -> None:
    import pixlearn

    train = [_blobs(seed) for seed in (0, 1)]
    model = pixlearn.fit_object_classifier([im for im, _, _ in train], [lab for _, lab, _ in train],
                                           [{i: CLASSES.index(k) for i, k in kinds.items()} for _, _, kinds in train],
                                           class_names=CLASSES)
    image, labels, kinds = _blobs(12)
    predictions = model.predict_objects(image, labels)
    assert isinstance(predictions, pixlearn.ObjectPredictions)
    truth = np.array([CLASSES.index(kinds[i]) for i in predictions.ids])
    assert np.mean(predictions.classes == truth) >= 0.9
    pixlearn.save_model(model, tmp_path / "m.zip")
    again = pixlearn.load_model(tmp_path / "m.zip")
    assert isinstance(again, pixlearn.ObjectClassifier)
    np.testing.assert_array_equal(again.predict_objects(image, labels).probabilities, predictions.probabilities)
    from pixlearn.app.object_inputs import LabelSource

    fitted = pixlearn.train_object_classifier(data["train"], labels=data["train_labels"], classes=data["classes"])
    result = pixlearn.classify_object_files(fitted, sorted(data["test"].iterdir()), tmp_path / "out",
                                            source=LabelSource.open(data["test_labels"], None))
    assert sum(result.counts.values()) == 32 and result.summary.is_file()
