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
