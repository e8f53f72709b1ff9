from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.app.options import parse_duration
from pixlearn.data.images import read_image, read_labels, write_image

runner = CliRunner()


def _dataset(root, blobs, n=2, scribbles=False):
    image, labels = blobs
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        shifted = np.roll(image, 5 * i, axis=-1)
        lab = np.roll(labels, 5 * i, axis=-1)
        write_image(root / "images" / f"im{i}.tif", (shifted * 1000).astype(np.uint16))
        mask = (lab > 0).astype(np.uint8)
        write_image(root / "labels" / f"im{i}.tif", mask + 1 if scribbles else mask)
    return root


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_help_lists_commands():
    result, out = _run("--help")
    assert result.exit_code == 0
    for command in ("train", "predict", "evaluate", "info", "demo"):
        assert command in out


def test_train_predict_evaluate_info(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    result, out = _run("train", "--method", "rf", "--images", data / "images", "--labels", data / "labels",
                       "-o", tmp_path / "model", "--n-estimators", "10", "--sigmas", "0.7,1.6,3.5")
    assert result.exit_code == 0, out
    result, out = _run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "pred", "--probabilities")
    assert result.exit_code == 0, out
    pred = read_labels(tmp_path / "pred" / "im0.tif")
    truth = read_labels(data / "labels" / "im0.tif")
    assert (pred == truth).mean() > 0.9
    result, out = _run("evaluate", "--pred", tmp_path / "pred", "--truth", data / "labels", "-o", tmp_path / "eval")
    assert result.exit_code == 0, out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["aggregate"]["pixel_accuracy"] > 0.9
    assert (tmp_path / "eval" / "metrics.csv").exists()
    result, out = _run("info", tmp_path / "model")
    assert result.exit_code == 0 and '"kind": "classical"' in out


def test_predict_ome_formats_and_bad_options(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d, n=1)
    result, out = _run("train", "--method", "rf", "--images", data / "images", "--labels", data / "labels",
                       "-o", tmp_path / "model", "--n-estimators", "5", "--sigmas", "1.0")
    assert result.exit_code == 0, out
    result, out = _run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "p", "--format", "ome-zarr")
    assert result.exit_code == 0, out
    labels, axes = read_image(tmp_path / "p" / "im0.ome.zarr")
    assert axes == "YX" and labels.shape == blobs_2d[0].shape
    _assert_bad_input(*_run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "q", "--format", "png"),
                      "--format", "ome-zarr")
    _assert_bad_input(*_run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "q", "--objects", "shp"),
                      "--objects")
    _assert_bad_input(*_run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "q", "--objects", "csv"),
                      "instance")


def _assert_bad_input(result, out, *fragments):
    assert result.exit_code == 2, out
    assert "error:" in out
    for fragment in fragments:
        assert fragment in out, out


def test_missing_folder(tmp_path):
    result, out = _run("train", "--images", tmp_path / "nope", "--labels", tmp_path, "-o", tmp_path / "m")
    _assert_bad_input(result, out, "nope", "not a folder")
    assert not (tmp_path / "m").exists()


def test_shape_mismatch_named(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    write_image(data / "labels" / "im1.tif", np.zeros((7, 7), np.uint8))
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m")
    _assert_bad_input(result, out, "im1.tif", "differs")
    assert not (tmp_path / "m").exists()


def test_labels_outside_classes(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    lab = read_labels(data / "labels" / "im0.tif").copy()
    lab[0, 0] = 7
    write_image(data / "labels" / "im0.tif", lab)
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "--n-classes", "2",
                       "-o", tmp_path / "m")
    _assert_bad_input(result, out, "im0.tif", "value 7 is outside the 2 classes")


def test_nan_pixels(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    image = np.full(blobs_2d[0].shape, 0.5, np.float32)
    image[3, 3] = np.inf
    write_image(data / "images" / "im1.tif", image)
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m")
    _assert_bad_input(result, out, "im1.tif", "NaN or Inf")


def test_nothing_annotated(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d, n=1)
    write_image(data / "labels" / "im0.tif", np.zeros(blobs_2d[0].shape, np.uint8))
    result, out = _run("train", "--label-kind", "scribbles", "--images", data / "images", "--labels",
                       data / "labels", "-o", tmp_path / "m")
    _assert_bad_input(result, out, "im0.tif", "no labelled pixels")


def test_corrupt_image(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    (data / "images" / "im1.tif").write_bytes(b"II*\x00broken")
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m")
    _assert_bad_input(result, out, "im1.tif", "cannot read")


def test_wrong_dimensionality_for_model(tmp_path, blobs_2d, blobs_3d):
    data = _dataset(tmp_path / "d", blobs_2d)
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m",
                       "--n-estimators", "5", "--sigmas", "1.0")
    assert result.exit_code == 0, out
    write_image(tmp_path / "vol.tif", (blobs_3d[0] * 1000).astype(np.uint16))
    result, out = _run("predict", tmp_path / "m", tmp_path / "vol.tif", "-o", tmp_path / "pred")
    assert result.exit_code == 0, out  # a 2D model takes a stack plane by plane
    stack = read_image(tmp_path / "pred" / "vol.tif")[0]
    assert stack.shape == blobs_3d[0].shape
    data3 = _dataset(tmp_path / "d3", blobs_3d)
    result, out = _run("train", "--images", data3 / "images", "--labels", data3 / "labels", "-o", tmp_path / "m3",
                       "--n-estimators", "5", "--sigmas", "1.0")
    assert result.exit_code == 0, out
    write_image(tmp_path / "flat.tif", (blobs_2d[0] * 1000).astype(np.uint16))
    result, out = _run("predict", tmp_path / "m3", tmp_path / "flat.tif", "-o", tmp_path / "pred3")
    _assert_bad_input(result, out, "flat.tif", "3D")  # but a 3D model no single plane
    assert not list((tmp_path / "pred3").glob("flat*"))


def test_corrupt_model(tmp_path, blobs_2d):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("{not json")
    write_image(tmp_path / "a.tif", blobs_2d[0])
    result, out = _run("predict", tmp_path / "m", tmp_path / "a.tif", "-o", tmp_path / "pred")
    _assert_bad_input(result, out, "model.json is not valid JSON")


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90s", 90.0), ("20m", 1200.0), ("1h30m", 5400.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage():
    with pytest.raises(ValueError, match="cannot read duration"):
        parse_duration("soon")


def _tiny_net_config(path, task_outputs):
    path.write_text(
        f"unet: {{ndim: 2, in_channels: 1, out_channels: {task_outputs}, depth: 2, base_channels: 4}}\n"
        "train: {epochs: 2, steps_per_epoch: 2, batch_size: 2, patch_shape: [32, 32], val_patches: 2}\n"
    )
    return path


@pytest.mark.parametrize("task, outputs", [("instances", 2), ("restore", 1)])
def test_network_train_predict(tmp_path, blobs_2d, task, outputs):
    image, labels = blobs_2d
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        write_image(tmp_path / "images" / f"im{i}.tif", np.roll(image, 3 * i, axis=0))
        target = np.roll(labels, 3 * i, axis=0) if task == "instances" else np.roll(image, 3 * i, axis=0)
        write_image(tmp_path / "labels" / f"im{i}.tif", target)
    config = _tiny_net_config(tmp_path / "net.yaml", outputs)
    result, out = _run("train", "--method", "unet", "--task", task, "--images", tmp_path / "images",
                       "--labels", tmp_path / "labels", "--config", config, "-o", tmp_path / "model.zip",
                       "--threads", "1")
    assert result.exit_code == 0, out
    assert (tmp_path / "model.zip.checkpoints" / "history.json").exists()
    result, out = _run("predict", tmp_path / "model.zip", tmp_path / "images", "-o", tmp_path / "pred")
    assert result.exit_code == 0, out
    pred, _ = read_image(tmp_path / "pred" / "im0.tif")
    assert pred.shape[:2] == image.shape
    if task == "instances":  # OME-Zarr with labels, and objects for QuPath and tables
        result, out = _run("predict", tmp_path / "model.zip", tmp_path / "images", "-o", tmp_path / "ome",
                           "--format", "ome-zarr", "--objects", "geojson,csv")
        assert result.exit_code == 0, out
        from pixlearn.data.ngff import check_ngff

        assert check_ngff(tmp_path / "ome" / "im0.ome.zarr") == []
        assert (tmp_path / "ome" / "objects" / "im0.geojson").exists() and (tmp_path / "ome" / "objects" / "im0.csv").exists()
    else:
        result, out = _run("predict", tmp_path / "model.zip", tmp_path / "images", "-o", tmp_path / "ome",
                           "--format", "ome-tif")
        assert result.exit_code == 0, out
        restored, axes = read_image(tmp_path / "ome" / "im0.ome.tif")
        assert axes in ("YX", "CYX") and restored.shape[-2:] == image.shape  # tifffile drops a lone channel
    result, out = _run("info", tmp_path / "model.zip")
    assert result.exit_code == 0 and f'"task": "{task}"' in out


def test_unet_task_needs_unet(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    result, out = _run("train", "--method", "rf", "--task", "restore", "--images", data / "images",
                       "--labels", data / "labels", "-o", tmp_path / "m")
    _assert_bad_input(result, out, "use --method unet")


def test_colour_image_given_to_grey_model(tmp_path, blobs_2d):
    data = _dataset(tmp_path / "d", blobs_2d)
    result, out = _run("train", "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m",
                       "--n-estimators", "5", "--sigmas", "1.0,2.0")
    assert result.exit_code == 0, out
    grey, _ = read_image(data / "images" / "im0.tif")
    write_image(tmp_path / "rgb" / "im0.tif", np.repeat((grey // 16)[..., None].astype(np.uint8), 3, axis=-1))
    write_image(tmp_path / "grey" / "im0.tif", (grey // 16).astype(np.uint8))
    for name in ("rgb", "grey"):
        result, out = _run("predict", tmp_path / "m", tmp_path / name, "-o", tmp_path / f"pred_{name}")
        assert result.exit_code == 0, out
    np.testing.assert_array_equal(read_labels(tmp_path / "pred_rgb" / "im0.tif"),
                                  read_labels(tmp_path / "pred_grey" / "im0.tif"))


def test_every_command_is_registered_and_documented():
    from pixlearn.app.cli import app

    for command in ("train", "predict", "evaluate", "info", "models", "demo", "doctor", "export", "gui"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command
