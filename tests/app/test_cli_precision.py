"""``--precision`` of ``pixlearn train`` and ``pixlearn predict``, and what ``pixlearn info`` shows of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.app.options import Method, Precision, experiment_from_options
from pixlearn.data.images import read_image, write_image
from pixlearn.nets.precision import BF16_TOLERANCE

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _pairs(root, blobs):
    image, labels = blobs
    for sub in ("images", "labels"):
        (root / sub).mkdir()
    for i in range(2):
        write_image(root / "images" / f"im{i}.tif", (np.roll(image, 4 * i, axis=0) * 1000).astype(np.uint16))
        write_image(root / "labels" / f"im{i}.tif", (np.roll(labels, 4 * i, axis=0) > 0).astype(np.uint8))
    config = root / "net.yaml"
    config.write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 2, base_channels: 4}\n"
        "train: {epochs: 1, steps_per_epoch: 2, batch_size: 2, patch_shape: [32, 32], val_patches: 2}\n"
    )
    return config


def test_train_records_and_predict_follows_the_precision(tmp_path, blobs_2d):
    config = _pairs(tmp_path, blobs_2d)
    model = tmp_path / "model.zip"
    result, out = _run("train", "--method", "unet", "--images", tmp_path / "images", "--labels", tmp_path / "labels",
                       "--config", config, "-o", model, "--threads", "1", "--precision", "fp32")
    assert result.exit_code == 0, out
    result, out = _run("info", model)
    assert result.exit_code == 0, out
    header = json.loads(out)
    history = header["model"]["history"]
    assert (history["precision"], history["precision_source"]) == ("fp32", "forced")
    assert header["experiment"]["train"]["precision"] == "fp32"  # the option replaced the file's "auto"
    outputs = {}
    for precision in ("fp32", "bf16"):
        result, out = _run("predict", model, tmp_path / "images", "-o", tmp_path / precision, "--probabilities",
                           "--precision", precision)
        assert result.exit_code == 0, out
        outputs[precision] = read_image(tmp_path / precision / "probabilities" / "im0.tif")[0].astype(np.float32)
    np.testing.assert_allclose(outputs["bf16"], outputs["fp32"], rtol=0, atol=BF16_TOLERANCE)


@pytest.mark.parametrize("command", ["train", "predict"])
def test_an_unknown_precision_is_a_usage_error(tmp_path, command):
    args = (["train", "--method", "unet", "--images", tmp_path, "--labels", tmp_path, "-o", tmp_path / "m"]
            if command == "train" else ["predict", tmp_path / "m", tmp_path, "-o", tmp_path / "out"])
    result, out = _run(*args, "--precision", "fp16")
    assert result.exit_code == 2
    assert "error: --precision" in out and "fp16" in out


@pytest.mark.parametrize("command", ["train", "predict"])
def test_help_lists_the_precision_choices(command):
    result, out = _run(command, "--help")
    assert result.exit_code == 0 and "--precision" in out
    assert "fp32" in out and "bf16" in out


def test_precision_option_overrides_the_config_file(tmp_path, caplog):
    config = tmp_path / "cfg.yaml"
    config.write_text("train: {precision: bf16}\n")
    options = {"sigmas": None, "n_estimators": None, "epochs": None, "time_limit": None, "seed": None}
    assert experiment_from_options(config, Method.unet, **options).train.precision == "bf16"
    assert experiment_from_options(config, Method.unet, precision=Precision.fp32, **options).train.precision == "fp32"
    assert experiment_from_options(None, Method.unet, **options).train.precision == "auto"
    older = tmp_path / "older.yaml"
    older.write_text("train: {autocast: 'off'}\n")  # a configuration written before precision
    assert experiment_from_options(older, Method.unet, **options).train.precision == "fp32"
    experiment_from_options(None, Method.rf, precision=Precision.bf16, **options)
    assert "--precision apply to --method unet only" in caplog.text
