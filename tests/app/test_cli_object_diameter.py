"""``pixlearn train --object-diameter``: scale normalisation recorded in the model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.app.options import Method, with_object_diameter
from pixlearn.data.images import write_image
from pixlearn.errors import PixlearnError
from pixlearn.experiment import ExperimentConfig

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_option_sets_the_target_diameter():
    experiment = ExperimentConfig()
    assert with_object_diameter(experiment, Method.unet, None) is experiment
    assert with_object_diameter(experiment, Method.unet, "14").train.target_diameter == 14.0
    assert with_object_diameter(experiment, Method.unet, "auto").train.target_diameter == "auto"
    with pytest.raises(PixlearnError, match="--object-diameter: cannot read"):
        with_object_diameter(experiment, Method.unet, "-3")
    with pytest.raises(PixlearnError, match="networks only"):
        with_object_diameter(experiment, Method.rf, "12")


def test_train_records_the_object_diameter(tmp_path, blobs_2d):
    image, labels = blobs_2d
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        write_image(tmp_path / "images" / f"im{i}.tif", (np.roll(image, 4 * i, axis=0) * 1000).astype(np.uint16))
        write_image(tmp_path / "labels" / f"im{i}.tif", np.roll(labels, 4 * i, axis=0).astype(np.uint16))
    config = tmp_path / "net.yaml"
    config.write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 2, base_channels: 4}\n"
        "train: {epochs: 1, steps_per_epoch: 1, batch_size: 2, patch_shape: [32, 32], val_patches: 2}\n"
    )
    model = tmp_path / "model.zip"
    result, out = _run("train", "--method", "unet", "--task", "instances", "--images", tmp_path / "images",
                       "--labels", tmp_path / "labels", "--config", config, "-o", model, "--threads", "1",
                       "--object-diameter", "20")
    assert result.exit_code == 0, out
    result, out = _run("info", model)
    assert result.exit_code == 0, out
    header = json.loads(out)
    assert header["model"]["object_diameter"] == 20.0
    assert header["experiment"]["train"]["target_diameter"] == 20.0
    result, out = _run("train", "--images", tmp_path / "images", "--labels", tmp_path / "labels", "-o",
                       tmp_path / "rf.zip", "--object-diameter", "20")
    assert result.exit_code == 2 and "networks only" in out
