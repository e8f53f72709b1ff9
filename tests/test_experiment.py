"""ExperimentConfig: typed sections, strict loading from YAML/JSON, CLI overrides, saved with models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.data.images import write_image
from pixlearn.errors import PixlearnError
from pixlearn.experiment import ExperimentConfig
from pixlearn.nets.config import AugmentConfig, TrainConfig, UNetConfig

PREVIOUS_LAYOUT = Path(__file__).parent / "models" / "fixtures" / "v1"


def _custom() -> ExperimentConfig:
    base = ExperimentConfig()
    return ExperimentConfig(
        unet=UNetConfig(ndim=3, out_channels=2, depth=2, pool_kernels=((1, 2, 2), (2, 2, 2))),
        train=TrainConfig(epochs=3, batch_size=8, patch_shape=(8, 32, 32), time_limit_s=60.0,
                          augmentation=AugmentConfig(elastic=True, scale_range=(0.9, 1.1))),
        features=base.features.replace(sigmas=(1.0, 2.5)),
        normalization=base.normalization.replace(mode="fixed", low=0.0, high=255.0),
        tile=base.tile.replace(tile_shape=(64, 64), blend="constant"),
    )


@pytest.mark.parametrize("cfg", [ExperimentConfig(), _custom()])
def test_round_trip(cfg, tmp_path):
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    assert ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for name in ("c.json", "c.yaml"):
        cfg.save(tmp_path / name)
        assert ExperimentConfig.from_file(tmp_path / name) == cfg


def test_yaml_and_json_files_read_alike(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "schema_version: 1\n"
        "unet: {ndim: 2, out_channels: 2, depth: 2, base_channels: 4}\n"
        "train:\n  epochs: 4\n  batch_size: 8\n  augmentation: {elastic: true}\n"
        "normalization: {pmin: 2, pmax: 98}\n"
    )
    (tmp_path / "c.json").write_text(json.dumps({
        "schema_version": 1, "unet": {"ndim": 2, "out_channels": 2, "depth": 2, "base_channels": 4},
        "train": {"epochs": 4, "batch_size": 8, "augmentation": {"elastic": True}},
        "normalization": {"pmin": 2, "pmax": 98},
    }))
    from_yaml = ExperimentConfig.from_file(tmp_path / "c.yaml")
    assert from_yaml == ExperimentConfig.from_file(tmp_path / "c.json")
    assert from_yaml.train.batch_size == 8 and from_yaml.train.patch_shape is None  # None: from the data
    assert from_yaml.train.augmentation.elastic and from_yaml.normalization.pmin == 2.0
    assert from_yaml.unet == UNetConfig(ndim=2, out_channels=2, depth=2, base_channels=4)
    (tmp_path / "empty.yaml").write_text("")
    assert ExperimentConfig.from_file(tmp_path / "empty.yaml") == ExperimentConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trian: {epochs: 2}\n", r"unknown keys \['trian'\]"),
        ("train: {epochs: 2, epoch: 3}\n", r"ExperimentConfig.train: TrainConfig: unknown keys \['epoch'\]"),
        ("train: {augmentation: {flip: true}}\n", r"TrainConfig.augmentation: AugmentConfig: unknown keys \['flip'\]"),
        ("unet: {depht: 2}\n", r"ExperimentConfig.unet: UNetConfig: unknown keys \['depht'\]"),
    ],
)
def test_unknown_keys_refused(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(PixlearnError, match=message) as info:
        ExperimentConfig.from_file(tmp_path / "c.yaml")
    assert "c.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"epochs": "ten"}}, r"TrainConfig.epochs: expected int, got str 'ten'"),
        ({"train": {"batch_size": 2.5}}, r"TrainConfig.batch_size: expected int, got float"),
        ({"train": {"patch_shape": [32, "a"]}}, r"TrainConfig.patch_shape: expected int, got str"),
        ({"train": {"time_limit_s": "1h"}}, r"TrainConfig.time_limit_s: expected float, got str"),
        ({"unet": {"residual": "yes"}}, r"UNetConfig.residual: expected bool, got str"),
        ({"unet": 3}, r"ExperimentConfig.unet: expected a mapping for UNetConfig"),
        ({"normalization": {"mode": 1}}, r"NormalizeConfig.mode: expected str, got int"),
        ({"features": {"sigmas": 1.0}}, r"FeatureConfig.sigmas: expected a list"),
        ({"schema_version": 2}, r"schema_version 2 is not supported"),
    ],
)
def test_wrong_types_refused(data, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_dict(data)


def test_reading_a_config_imports_no_torch():
    code = ("import sys; from pixlearn.experiment import ExperimentConfig; "
            "ExperimentConfig.from_dict({'unet': {'depth': 2}, 'train': {'epochs': 1}}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_model_files_of_the_previous_layout_have_no_experiment():
    for name in ("rf_v1.zip", "unet_instances_v1.zip"):
        assert ExperimentConfig.from_model(PREVIOUS_LAYOUT / name) is None


def _write_pairs(root, blobs, n=2):
    image, labels = blobs
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        write_image(root / "images" / f"im{i}.tif", (np.roll(image, 5 * i, axis=-1) * 1000).astype(np.uint16))
        write_image(root / "labels" / f"im{i}.tif", (np.roll(labels, 5 * i, axis=-1) > 0).astype(np.uint8))


def _train(*args):
    result = CliRunner().invoke(app, ["train", *[str(a) for a in args]])
    assert result.exit_code == 0, result.output
    return result


def test_cli_option_overrides_config_file_and_resolved_config_is_saved_classical(tmp_path, blobs_2d):
    _write_pairs(tmp_path, blobs_2d)
    (tmp_path / "c.yaml").write_text("features: {sigmas: [1.0, 2.0, 4.0], truncate: 4.0}\n")
    _train("--images", tmp_path / "images", "--labels", tmp_path / "labels", "--config", tmp_path / "c.yaml",
           "--sigmas", "0.7,1.6", "-o", tmp_path / "model")
    saved = ExperimentConfig.from_model(tmp_path / "model")
    assert saved is not None
    assert saved.features.sigmas == (0.7, 1.6)  # the option wins over the file
    assert saved.features.truncate == 4.0  # the file's value kept
    header = json.loads((tmp_path / "model" / "model.json").read_text())
    assert header["experiment"]["schema_version"] == 1


def test_cli_saves_the_resolved_network_config(tmp_path, blobs_2d, one_torch_thread):
    _write_pairs(tmp_path, blobs_2d)
    (tmp_path / "c.yaml").write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 2, base_channels: 4}\n"
        "train: {epochs: 5, steps_per_epoch: 1, batch_size: 2, val_patches: 2, seed: 4}\n"
    )
    _train("--method", "unet", "--images", tmp_path / "images", "--labels", tmp_path / "labels",
           "--config", tmp_path / "c.yaml", "--epochs", "1", "-o", tmp_path / "model", "--threads", "1")
    saved = ExperimentConfig.from_model(tmp_path / "model")
    assert saved is not None and saved.train.is_resolved
    assert saved.train.epochs == 1 and saved.train.seed == 4  # option over file; file over default
    assert saved.train.batch_size == 2 and saved.train.loss == "ce_dice"
    assert saved.unet == UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=2, base_channels=4)
    header = json.loads((tmp_path / "model" / "model.json").read_text())
    assert header["experiment"]["train"] == header["model"]["train"]  # what the model was trained with
