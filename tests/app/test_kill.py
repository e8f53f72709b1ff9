"""kill -9 at random (seeded) points of training and of batch prediction: the rerun completes,
and nothing is left corrupt, partial or inconsistent.

The fast suite kills at a few seeded points; ``--runslow`` at many more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from badinput.crafting import fit_tiny_classical
from pixlearn.app.cli import app
from pixlearn.data.images import read_image, write_image
from pixlearn.models.model_file import load_model, save_model
from pixlearn.predict import read_manifest

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[2] / "src")
N_IMAGES = 10


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pixlearn", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc: subprocess.Popen, ready, delay_s: float, timeout_s: float = 120) -> bool:
    """SIGKILL `proc` `delay_s` after ``ready()`` holds; ``False`` if it ended first."""
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise AssertionError("the run never reached the kill point")
            time.sleep(0.01)
        time.sleep(delay_s)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------ prediction


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A tiny forest, a folder of images slow enough to kill between them, and clean outputs."""
    root = tmp_path_factory.mktemp("kill")
    model = save_model(fit_tiny_classical("rf", 2), root / "rf.zip")
    rng = np.random.default_rng(3)
    (root / "in").mkdir()
    for i in range(N_IMAGES):
        image = np.full((192, 160), 0.2, np.float32)
        image[20 + 5 * i: 90 + 5 * i, 30:100] = 0.8
        np.save(root / "in" / f"im{i:02d}.npy", image + rng.normal(0, 0.05, image.shape).astype(np.float32))
    reference = root / "reference"
    result = runner.invoke(app, ["predict", str(model), str(root / "in"), "-o", str(reference), "--probabilities"])
    assert result.exit_code == 0, result.output
    return root, model, reference


def _kill_predict(root: Path, model: Path, reference: Path, seed: int, fmt: str) -> None:
    rng = np.random.default_rng(seed)
    out = root / f"out-{seed}-{fmt}"
    after = int(rng.integers(0, N_IMAGES - 2))  # images finished before the kill
    delay = float(rng.uniform(0, 0.15))
    args = ["predict", str(model), str(root / "in"), "-o", str(out), "--probabilities", "--format", fmt]

    def ready() -> bool:
        manifest = out / "manifest.jsonl"
        return after == 0 and out.exists() or manifest.exists() and manifest.read_bytes().count(b'"seconds"') >= after

    killed = _kill_when(_spawn(args), ready, delay)
    result = runner.invoke(app, args)  # the rerun: completes what the kill left
    assert result.exit_code == 0, result.output
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")], "scratch or partial files left"
    records = read_manifest(out)
    assert sorted(Path(r["output"]).name for r in records) == [f"im{i:02d}.{fmt}" for i in range(N_IMAGES)], \
        "every output exactly once in the manifest"
    for i in range(N_IMAGES):
        for sub in ("", "probabilities"):
            got = read_image(out / sub / f"im{i:02d}.{fmt}")[0]
            np.testing.assert_array_equal(np.asarray(got), read_image(reference / sub / f"im{i:02d}.tif")[0])
    assert killed or after >= N_IMAGES - 3  # (a run that ended first still had to leave a clean folder)


@pytest.mark.parametrize("seed, fmt", [(1, "tif"), (2, "zarr")])
def test_kill_9_during_batch_prediction_then_rerun(batch, seed, fmt):
    _kill_predict(*batch, seed, fmt)


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(10, 22))
def test_kill_9_during_batch_prediction_many_points(batch, seed):
    _kill_predict(*batch, seed, "tif" if seed % 2 else "zarr")


# ------------------------------------------------------------------------------------ training


EPOCHS = 5


def _kill_train(tmp_path: Path, blobs, seed: int) -> None:
    image, labels = blobs
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        write_image(tmp_path / "images" / f"im{i}.tif", np.roll(image, 4 * i, axis=1))
        write_image(tmp_path / "labels" / f"im{i}.tif", (np.roll(labels, 4 * i, axis=1) > 0).astype(np.uint8))
    (tmp_path / "net.yaml").write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 1, base_channels: 4}\n"
        f"train: {{epochs: {EPOCHS}, steps_per_epoch: 2, batch_size: 2, patch_shape: [32, 32], val_patches: 2, "
        "patience: 0}\n")
    args = ["train", "--method", "unet", "--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels"),
            "--config", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "model"), "--threads", "1",
            "--device", "cpu"]
    rng = np.random.default_rng(seed)
    epoch = int(rng.integers(0, EPOCHS))  # 0: before the first checkpoint
    delay = float(rng.uniform(0, 0.3))
    last = tmp_path / "model.checkpoints" / "last.json"

    def ready() -> bool:
        if epoch == 0:
            return True
        try:
            return json.loads(last.read_text())["epoch"] >= epoch
        except (OSError, ValueError, KeyError):
            return False

    _kill_when(_spawn(args), ready, delay if epoch else 2.0 + 3 * delay)
    result = runner.invoke(app, [*args, "--resume", "--overwrite"])
    assert result.exit_code == 0, result.output
    model = load_model(tmp_path / "model", device="cpu")
    assert model.kind == "network"
    history = json.loads((tmp_path / "model.checkpoints" / "history.json").read_text())
    assert [row["epoch"] for row in history["records"]] == list(range(1, EPOCHS + 1))
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_kill_9_during_training_then_resume(tmp_path, blobs_2d):
    _kill_train(tmp_path, blobs_2d, seed=5)


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(20, 26))
def test_kill_9_during_training_many_points(tmp_path, blobs_2d, seed):
    _kill_train(tmp_path, blobs_2d, seed)
