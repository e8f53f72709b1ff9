"""``pixlearn train`` / ``predict`` on tiny anisotropic stacks: spacing from metadata or --spacing, --memory."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.models.model_file import load_model

runner = CliRunner()
TRAIN = ("--method", "rf", "--n-estimators", "5", "--sigmas", "0.7,6.0")


def _stack(root, *, metadata: bool, planes: int = 5):
    """Serial sections: tubes across a few planes, with ImageJ spacing metadata (50 x 4.6 x 4.6 nm) or none."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    inside = ((yy % 16) - 8) ** 2 + ((xx % 16) - 8) ** 2 < 20
    image = (np.broadcast_to(inside, (planes, 32, 32)) * 150 + rng.integers(0, 60, (planes, 32, 32))).astype(np.uint8)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    kwargs = dict(imagej=True, resolution=(1 / 0.0046, 1 / 0.0046),
                  metadata={"spacing": 0.05, "unit": "um", "axes": "ZYX"}) if metadata else {}
    tifffile.imwrite(root / "images" / "s.tif", image, **kwargs)
    tifffile.imwrite(root / "labels" / "s.tif", np.broadcast_to(inside, image.shape).astype(np.uint8))
    return root


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _train(tmp_path, data, *extra, name="model"):
    return _run("train", *TRAIN, "--images", data / "images", "--labels", data / "labels", "-o", tmp_path / name,
                *extra)


def test_spacing_comes_from_the_file_metadata(tmp_path):
    data = _stack(tmp_path / "d", metadata=True)
    result, out = _train(tmp_path, data, "--memory", "1GiB")
    assert result.exit_code == 0, out
    model = load_model(tmp_path / "model")
    assert model.feature_cfg.spacing == pytest.approx((10.8696, 1.0, 1.0))
    assert model.halo[0] < model.halo[1]  # scales divided per axis: little context across sections
    assert model.training["memory_budget_bytes"] == 2**30


def test_spacing_option_overrides_the_metadata_and_is_checked(tmp_path):
    data = _stack(tmp_path / "d", metadata=True)
    result, out = _train(tmp_path, data, "--spacing", "40,4,4")
    assert result.exit_code == 0, out
    assert load_model(tmp_path / "model").feature_cfg.spacing == (10.0, 1.0, 1.0)
    for bad, fragment in (("4,4", "--spacing"), ("a,b,c", "--spacing"), ("0,1,1", "--spacing")):
        result, out = _train(tmp_path, data, "--spacing", bad, name="other")
        assert result.exit_code == 2 and fragment in out, out


def test_no_metadata_means_isotropic_and_a_warning_about_large_sigmas(tmp_path, caplog):
    data = _stack(tmp_path / "d", metadata=False)
    with caplog.at_level(logging.WARNING):
        result, out = _train(tmp_path, data)
    assert result.exit_code == 0, out
    assert load_model(tmp_path / "model").feature_cfg.spacing is None
    assert "sigma 6 is 6 voxels along the planes, more than the 5 planes" in caplog.text
    assert "--spacing" in caplog.text


def test_predict_with_a_memory_budget_and_bad_budgets(tmp_path, caplog):
    data = _stack(tmp_path / "d", metadata=True)
    assert _train(tmp_path, data)[0].exit_code == 0
    result, out = _run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "p", "--memory", "1GiB")
    assert result.exit_code == 0, out
    pred = tifffile.imread(tmp_path / "p" / "s.tif")
    truth = tifffile.imread(data / "labels" / "s.tif")
    assert (pred == truth).mean() > 0.9
    other = _stack(tmp_path / "o", metadata=False)
    tifffile.imwrite(other / "images" / "t.tif", tifffile.imread(data / "images" / "s.tif"), imagej=True,
                     resolution=(20.0, 20.0), metadata={"spacing": 0.05, "axes": "ZYX"})  # isotropic, unlike the model
    with caplog.at_level(logging.WARNING):
        result, out = _run("predict", tmp_path / "model", other / "images" / "t.tif", "-o", tmp_path / "q")
    assert result.exit_code == 0, out
    assert "the model was trained with (10.8696, 1.0, 1.0)" in caplog.text
    for bad in ("lots", "1KiB"):
        result, out = _run("predict", tmp_path / "model", data / "images", "-o", tmp_path / "r", "--memory", bad)
        assert result.exit_code == 2 and "--memory" in out, out
        result, out = _train(tmp_path, data, "--memory", bad, name="m2")
        assert result.exit_code == 2 and "--memory" in out, out


@pytest.mark.usefixtures("one_torch_thread")
def test_unet_reads_the_spacing_to_choose_2d_planes_or_3d(tmp_path):
    """A 20-plane stack trains in 3D when isotropic, plane by plane in 2D at 50:4.6 (metadata or
    --spacing), and --spacing overrides what the file states."""
    config = tmp_path / "quick.yaml"
    config.write_text("train: {epochs: 1, steps_per_epoch: 1, batch_size: 1, val_patches: 1}\n")
    quick = ("--method", "unet", "--task", "semantic", "--config", config, "--threads", "1")
    cases = (("iso", False, ()), ("meta", True, ()), ("given", False, ("--spacing", "50,4.6,4.6")),
             ("override", True, ("--spacing", "5,4.6,4.6")))
    ndims = {}
    for name, metadata, extra in cases:
        data = _stack(tmp_path / name, metadata=metadata, planes=20)
        result, out = _run("train", *quick, "--images", data / "images", "--labels", data / "labels",
                           "-o", tmp_path / f"{name}.zip", *extra)
        assert result.exit_code == 0, out
        ndims[name] = load_model(tmp_path / f"{name}.zip").ndim
    assert ndims == {"iso": 3, "meta": 2, "given": 2, "override": 3}
    result, out = _run("train", *quick, "--images", tmp_path / "iso" / "images", "--labels",
                       tmp_path / "iso" / "labels", "-o", tmp_path / "bad.zip", "--spacing", "4,4")
    assert result.exit_code == 2 and "--spacing" in out, out
    assert not (tmp_path / "bad.zip").exists()
