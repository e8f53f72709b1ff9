"""The demo (`make demo`, `pixlearn demo`): its outputs exist and its scores are reported.

The demo runs once per module with a 3 s U-Net budget (the U-Net learns little in that time, so
no score is asserted, only that every score is there, consistent and printed).
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from pixlearn.app import demo_instances
from pixlearn.app.cli import app
from pixlearn.app.demo import run_demo
from pixlearn.app.demo_instances import UNET_SECONDS, compare_instances, demo_unet_configs, touching_crop
from pixlearn.data.images import read_labels

SCORES = ("ap50", "ap75", "f1", "n_true", "n_pred", "touching_pairs", "separated_pairs")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The output folder and printed text of ``pixlearn demo --unet-seconds 3``."""
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("demo") / "out"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, ["demo", "--output", str(out), "--unet-seconds", "3"])
    finally:
        torch.set_num_threads(previous)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_writes_both_models_predictions_and_figures(demo_run) -> None:
    out, _ = demo_run
    split = json.loads((out / "data" / "split.json").read_text())
    for name in ("figure.png", "instances.png", "metrics.json", "instance_metrics.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "model" / "model.json").exists() and (out / "unet_model" / "model.json").exists()
    for name in split["test"]:
        truth = read_labels(out / "data" / "labels" / f"{name}.tif")
        for folder in ("predictions", "rf_instances", "unet_predictions"):
            assert read_labels(out / folder / f"{name}.tif").shape == truth.shape, folder


def test_demo_reports_instance_scores_of_both_methods(demo_run) -> None:
    out, printed = demo_run
    scores = json.loads((out / "instance_metrics.json").read_text())
    assert set(scores) == {"random_forest_components", "unet", "builtin_nuclei"}  # the built-in: no training
    for method in scores.values():
        assert set(SCORES) <= set(method)
        assert all(0.0 <= method[k] <= 1.0 for k in ("ap50", "ap75", "f1"))
        assert 0 <= method["separated_pairs"] <= method["touching_pairs"]
    forest, unet = scores["random_forest_components"], scores["unet"]
    assert forest["n_true"] == unet["n_true"] > 0 and forest["touching_pairs"] == unet["touching_pairs"] > 0
    # connected components keep touching nuclei together: the reason for the instance U-Net
    assert forest["separated_pairs"] < forest["touching_pairs"]
    assert unet["train_seconds"] > 0 and unet["epochs"] >= 1
    assert "training an instance U-Net for 3 s" in printed
    assert scores["builtin_nuclei"]["n_true"] == forest["n_true"] and scores["builtin_nuclei"]["n_pred"] > 0
    for label, method in (("random forest + connected components", forest), ("U-Net (", unet),
                          ("built-in nuclei (no training)", scores["builtin_nuclei"])):
        row = next(line for line in printed.splitlines() if label in line)
        assert f"{method['ap50']:.3f}" in row and f"{method['separated_pairs']} / {method['touching_pairs']}" in row
    assert "AP@0.5" in printed and "AP@0.75" in printed and "touching pairs separated" in printed
    assert "instances.png" in printed and "unet_model/" in printed


def test_without_the_unet_the_forest_is_still_scored_as_instances(demo_run, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    shutil.copytree(demo_run[0], out)
    split = json.loads((out / "data" / "split.json").read_text())
    lines, trained = compare_instances(out, split, unet_seconds=0, seed=0, progress=print)
    assert not trained and len(lines) == 4 and "U-Net" not in "\n".join(lines)
    assert set(json.loads((out / "instance_metrics.json").read_text())) == {"random_forest_components", "builtin_nuclei"}

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(demo_instances.importlib.util, "find_spec",
                        lambda name, *args: None if name == "torch" else find_spec(name, *args))
    lines, trained = compare_instances(out, split, unet_seconds=5, seed=0, progress=print)
    assert not trained and "PyTorch is not installed" in lines[-1]


def test_demo_refuses_a_negative_budget(tmp_path) -> None:
    with pytest.raises(ValueError, match="unet_seconds"):
        run_demo(tmp_path / "out", unet_seconds=-1)
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path / "out"), "--unet-seconds", "-1"])
    assert result.exit_code == 2 and "--unet-seconds" in result.output
    assert not (tmp_path / "out").exists()


def test_the_command_line_default_is_the_demo_default() -> None:
    command = typer.main.get_command(app).commands["demo"]
    default = next(p.default for p in command.params if p.name == "unet_seconds")
    assert default == UNET_SECONDS
    unet, train = demo_unet_configs(default, seed=3)
    assert train.time_limit_s == UNET_SECONDS and train.seed == 3 and unet.out_channels == 2


def test_touching_crop_finds_the_touching_objects() -> None:
    truth = np.zeros((64, 80), np.uint16)
    truth[5:12, 5:12] = 1                    # alone
    truth[40:50, 50:58], truth[40:50, 58:66] = 2, 3  # a touching pair
    index, (rows, cols) = touching_crop([np.zeros((64, 80), np.uint16), truth], size=24)
    assert index == 1 and rows.stop - rows.start == cols.stop - cols.start == 24
    assert rows.start <= 40 and rows.stop >= 50 and cols.start <= 57 < 59 <= cols.stop
    index, (rows, cols) = touching_crop([truth[:16, :16]], size=24)  # smaller than the crop: the whole image
    assert (rows, cols) == (slice(0, 16), slice(0, 16))
