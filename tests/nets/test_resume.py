"""A training process killed with SIGKILL continues from its last checkpoint with --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from typer.testing import CliRunner

from pixlearn.app.cli import app
from pixlearn.data.images import write_image


def test_kill_9_then_resume(tmp_path, blobs_2d):
    image, labels = blobs_2d
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        write_image(tmp_path / "images" / f"im{i}.tif", np.roll(image, 4 * i, axis=1))
        write_image(tmp_path / "labels" / f"im{i}.tif", (np.roll(labels, 4 * i, axis=1) > 0).astype(np.uint8))
    (tmp_path / "net.yaml").write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 2, base_channels: 4}\n"
        "train: {epochs: 400, steps_per_epoch: 2, batch_size: 2, patch_shape: [32, 32], val_patches: 2, patience: 0}\n"
    )
    args = ["train", "--method", "unet", "--task", "semantic", "--images", str(tmp_path / "images"),
            "--labels", str(tmp_path / "labels"), "--config", str(tmp_path / "net.yaml"),
            "-o", str(tmp_path / "model"), "--threads", "1"]
    checkpoints = tmp_path / "model.checkpoints"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pixlearn", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            last = checkpoints / "last.json"
            if last.exists() and json.loads(last.read_text())["epoch"] >= 2:
                break
            if proc.poll() is not None:
                raise AssertionError(f"training exited early with code {proc.returncode}")
            time.sleep(0.2)
        else:
            raise AssertionError("no checkpoint within 120 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "model").exists()  # killed before the end: no model written
    killed_at = json.loads((checkpoints / "last.json").read_text())["epoch"]

    config = tmp_path / "short.yaml"  # resume and finish soon after the kill
    config.write_text((tmp_path / "net.yaml").read_text().replace("epochs: 400", f"epochs: {killed_at + 2}"))
    args[args.index("--config") + 1] = str(config)
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    history = json.loads((checkpoints / "history.json").read_text())
    epochs = [row["epoch"] for row in history["records"]]
    assert epochs == list(range(1, killed_at + 3))  # epochs before the kill kept, none repeated or lost
    assert history["stop_reason"] == "completed"
    assert (tmp_path / "model" / "weights.safetensors").exists()


def _fit(blobs_2d, directory, *, resume, unet=None, epochs=1, batch_size=None):
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.training import TrainConfig

    image, labels = blobs_2d
    cfg = TrainConfig(epochs=epochs, steps_per_epoch=1, batch_size=batch_size, patch_shape=None, val_patches=1)
    return fit_network([image[..., None]] * 2, [(labels > 0).astype(np.int64)] * 2, "semantic", unet=unet,
                       train_config=cfg, options=FitOptions(checkpoint_dir=directory, resume=resume, device="cpu"))


def test_a_resumed_run_goes_on_with_the_checkpointed_network(tmp_path, blobs_2d, one_torch_thread):
    import pytest

    from pixlearn.errors import PixlearnError
    from pixlearn.nets.checkpoints import recorded_setup
    from pixlearn.nets.unet import UNetConfig

    small = UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=1, base_channels=4)
    directory = tmp_path / "ck"
    first = _fit(blobs_2d, directory, resume=False, unet=small, batch_size=2)
    network, config = recorded_setup(directory)
    assert UNetConfig.from_dict(network) == small and config["batch_size"] == 2
    # nothing given: not the network auto_config would choose, but the checkpoint's, its patch and batch
    resumed = _fit(blobs_2d, directory, resume=True, epochs=2)
    assert resumed.unet == small and resumed.train_config.batch_size == 2
    assert resumed.train_config.patch_shape == first.train_config.patch_shape
    assert [r["epoch"] for r in json.loads((directory / "history.json").read_text())["records"]] == [1, 2]
    with pytest.raises(PixlearnError, match=r"another network \(it differs in base_channels\)"):
        _fit(blobs_2d, directory, resume=True, unet=small.replace(base_channels=8), epochs=3)
    state_file = directory / json.loads((directory / "last.json").read_text())["checkpoint"] / "state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "network": None}))  # as a checkpoint of before recorded it
    with pytest.raises(PixlearnError, match="holds the weights of another network"):
        _fit(blobs_2d, directory, resume=True, unet=small.replace(base_channels=8), epochs=3)
