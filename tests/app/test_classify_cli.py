"""``pixlearn train/predict/evaluate`` for image classification, in-process, on discs vs squares."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from pixlearn.app.cli import app  # noqa: E402
from pixlearn.data.images import read_image  # noqa: E402
from pixlearn.data.writers import write_image  # noqa: E402

CLASSES = ("disc", "square")
CONFIG = "classify:\n  net: {width: 8, depth: 3, stem_stride: 1}\n  train: {epochs: 20, batch_size: 16}\n"


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _write(root, images, classes, *, folders=True):
    """PNG files, in a folder per class or all in `root`; their (stem, class) rows."""
    rows = []
    for i, (image, c) in enumerate(zip(images, classes)):
        name = f"{root.name}{i:03d}"
        write_image((root / CLASSES[c] if folders else root) / f"{name}.png", (image[..., 0] // 4).astype(np.uint8))
        rows.append((name, CLASSES[c]))
    return rows


def _table(path, rows, header="name,class"):
    path.write_text(header + "\n" + "".join(f"{n},{c}\n" for n, c in rows))
    return path


@pytest.fixture(scope="module")
def trained(shapes_2d, tmp_path_factory):
    """A classifier trained by the command line on a folder per class, and its test folder."""
    import torch

    root = tmp_path_factory.mktemp("classify")
    (images, classes, _), (test_images, test_classes, _) = shapes_2d
    _write(root / "train", images, classes)
    test_rows = _write(root / "test", test_images, test_classes)
    (root / "net.yaml").write_text(CONFIG)
    previous = torch.get_num_threads()
    result, out = _run("train", "--method", "cnn", "--task", "classify", "--images", root / "train",
                       "-o", root / "model", "--config", root / "net.yaml", "--threads", "1")
    torch.set_num_threads(previous)
    assert result.exit_code == 0, out
    return root, test_rows


def test_train_predict_explain_evaluate_from_class_folders(trained, one_torch_thread):
    root, _ = trained
    result, out = _run("info", root / "model")
    assert result.exit_code == 0 and '"kind": "image-classifier"' in out
    header = json.loads((root / "model" / "model.json").read_text())
    assert header["kind"] == "image-classifier" and header["experiment"]["classify"]["net"]["in_channels"] == 1
    assert (root / "model.checkpoints" / "curves.png").exists()
    result, out = _run("predict", root / "model", root / "test", "-o", root / "pred", "--explain", "gradcam")
    assert result.exit_code == 0, out
    lines = (root / "pred" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "name,class,probability,p_disc,p_square" and len(lines) == 41
    overlay, _ = read_image(root / "pred" / "explain" / "test000.png")
    assert overlay.shape[-1] == 3 and overlay.shape[0] >= 128
    result, out = _run("evaluate", "--kind", "classify", "--pred", root / "pred", "--truth", root / "test")
    assert result.exit_code == 0, out
    metrics = json.loads((root / "pred" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8 and metrics["macro_f1"] >= 0.8 and metrics["macro_roc_auc"] >= 0.9
    assert metrics["confusion"] and 0.0 <= metrics["expected_calibration_error"] <= 1.0
    for name in ("per_class.csv", "confusion_matrix.csv", "confusion_matrix.png", "reliability.csv", "reliability.png"):
        assert (root / "pred" / name).stat().st_size > 0, name


def test_predict_to_a_csv_and_evaluate_against_a_table(trained, tmp_path, one_torch_thread):
    root, test_rows = trained
    result, out = _run("predict", root / "model", root / "test" / "disc", root / "test" / "square",
                       "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, out
    truth = _table(tmp_path / "truth.csv", test_rows + [("unused", "disc")], header="file,label,comment")
    result, out = _run("evaluate", "--kind", "classify", "--pred", tmp_path / "out.csv", "--truth", truth,
                       "-o", tmp_path / "report")
    assert result.exit_code == 0, out
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["n_samples"] == 40
    # an existing table is kept unless --overwrite
    result, out = _run("predict", root / "model", root / "test", "-o", tmp_path / "out.csv")
    assert result.exit_code == 2 and "--overwrite" in out
    result, out = _run("predict", root / "model", root / "test", "-o", tmp_path / "out.csv", "--overwrite")
    assert result.exit_code == 0, out


def test_train_from_a_labels_table(shapes_2d, tmp_path, one_torch_thread):
    (images, classes, _), _ = shapes_2d
    rows = _write(tmp_path / "flat", images[:24], classes[:24], folders=False)
    labels = _table(tmp_path / "labels.csv", rows)
    (tmp_path / "net.yaml").write_text(CONFIG.replace("epochs: 20", "epochs: 2"))
    result, out = _run("train", "--method", "cnn", "--task", "classify", "--images", tmp_path / "flat", "--labels",
                       labels, "-o", tmp_path / "m.zip", "--config", tmp_path / "net.yaml", "--seed", "3")
    assert result.exit_code == 0, out
    assert "on 20 image(s)" in out  # 24 images, a stratified sixth held out for validation


@pytest.mark.parametrize("text, fragment", [
    ("name,kind\nflat000,disc\n", "class column"),
    ("name,class\nflat000,disc\nnobody,square\n", "line 3: 'nobody' matches no image"),
    ("name,class\nflat000,disc\nflat000,square\n", "line 3: 'flat000' is listed again"),
    ("name,class\nflat000,\n", "line 2: empty class"),
    ("name,class\n", "no rows"),
    ("name,class\nflat000,disc\nflat001,disc\n", "single class"),
])
def test_a_bad_labels_table_is_one_line_exit_2(shapes_2d, tmp_path, text, fragment):
    (images, classes, _), _ = shapes_2d
    _write(tmp_path / "flat", images[:4], classes[:4], folders=False)
    (tmp_path / "labels.csv").write_text(text)
    result, out = _run("train", "--method", "cnn", "--task", "classify", "--images", tmp_path / "flat",
                       "--labels", tmp_path / "labels.csv", "-o", tmp_path / "m")
    assert result.exit_code == 2, out
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "labels.csv" in lines[0], out
    assert fragment in lines[0], out
    assert not (tmp_path / "m").exists()


def test_misused_options_are_refused(trained, tmp_path):
    root, _ = trained
    result, out = _run("train", "--method", "rf", "--task", "classify", "--images", root / "train", "-o", tmp_path / "m")
    assert result.exit_code == 2 and "--method cnn --task classify" in out
    result, out = _run("train", "--images", root / "train", "-o", tmp_path / "m")
    assert result.exit_code == 2 and "--labels" in out
    result, out = _run("predict", root / "model", root / "test", "-o", tmp_path / "p", "--explain", "shap")
    assert result.exit_code == 2 and "gradcam or occlusion" in out
    result, out = _run("evaluate", "--kind", "classify", "--pred", tmp_path / "none.csv", "--truth", root / "test")
    assert result.exit_code == 2 and "none.csv: no such file" in out
    write_image(tmp_path / "rgb" / "a.png", np.zeros((24, 24, 3), np.uint8))
    result, out = _run("predict", root / "model", tmp_path / "rgb", "-o", tmp_path / "p")
    assert result.exit_code == 2 and "3 channel(s), 1 expected" in out
    assert not (tmp_path / "p").exists()


def test_doctor_and_info_describe_an_image_classifier(trained):
    root, _ = trained
    result, out = _run("doctor", root / "model", root / "test" / "disc")
    assert result.exit_code == 0 and "image classifier, 2D, 1 channel(s), classes disc, square" in out, out
