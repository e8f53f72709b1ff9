"""Training in several processes: who is who, each process's part of a batch, and 2 CPU processes
(``pixlearn train --ddp 2 --resume``) against one."""

from __future__ import annotations

import doctest
import json
import time

import numpy as np
import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from pixlearn.app.cli import app  # noqa: E402
from pixlearn.data.images import write_image  # noqa: E402
from pixlearn.errors import PixlearnError  # noqa: E402
from pixlearn.nets import distributed  # noqa: E402
from pixlearn.nets.distributed import BlockSampler, World, world_from_environment  # noqa: E402

TORCHRUN_ENV = {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "node1", "MASTER_PORT": "29500"}


def test_the_world_comes_from_the_launchers_environment():
    assert world_from_environment({}) == World()
    world = world_from_environment(TORCHRUN_ENV)
    assert (world.rank, world.world_size, world.local_rank, world.is_main) == (2, 4, 0, False)
    assert world.init_method == "env://"
    with pytest.raises(PixlearnError, match="MASTER_ADDR"):
        world_from_environment({"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(PixlearnError, match="whole numbers"):
        world_from_environment({**TORCHRUN_ENV, "RANK": "two"})
    with pytest.raises(PixlearnError, match="does not fit"):
        World(rank=2, world_size=2)


def test_doctests():
    result = doctest.testmod(distributed)
    assert result.attempted >= 5 and result.failed == 0


def test_each_process_takes_its_block_of_every_batch():
    batch, world_size, steps = 6, 3, 4
    local = World(world_size=world_size).local_batch_size(batch)
    parts = [list(BlockSampler(steps * batch, local, World(rank=r, world_size=world_size))) for r in range(world_size)]
    assert sorted(sum(parts, [])) == list(range(steps * batch))  # every item once, no overlap
    for k in range(steps):  # step k of process r: the r-th block of the single-process batch k
        assert sum((part[k * local:(k + 1) * local] for part in parts), []) == list(range(k * batch, (k + 1) * batch))
    assert [len(p) for p in parts] == [steps * local] * world_size
    with pytest.raises(PixlearnError, match="multiple of 4"):
        World(world_size=4).local_batch_size(6)


def test_ddp_is_for_networks_and_not_inside_a_torchrun_run(tmp_path, blobs_2d):
    from pixlearn.app.network_job import NetworkJob, launch_network_job
    from pixlearn.experiment import ExperimentConfig

    _folders(tmp_path, blobs_2d)
    result = CliRunner().invoke(app, ["train", "--method", "rf", "--images", str(tmp_path / "images"), "--labels",
                                      str(tmp_path / "labels"), "-o", str(tmp_path / "rf"), "--ddp", "2"])
    assert result.exit_code == 2 and "--ddp trains networks only" in result.output
    job = NetworkJob(tmp_path / "images", tmp_path / "labels", tmp_path / "m", "semantic", "dense", ExperimentConfig())
    with pytest.raises(PixlearnError, match="leave --ddp out"):
        launch_network_job(job, ddp=2, env=TORCHRUN_ENV)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()


def _folders(tmp_path, blobs_2d):
    image, labels = blobs_2d
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        write_image(tmp_path / "images" / f"im{i}.tif", np.roll(image, 5 * i, axis=1))
        write_image(tmp_path / "labels" / f"im{i}.tif", (np.roll(labels, 5 * i, axis=1) > 0).astype(np.uint8))


def _config(tmp_path, epochs: int):
    # InstanceNorm and the pixel-mean cross entropy: both are the same whether a batch of 4 is seen whole
    # or as two halves (BatchNorm statistics and the batch Dice are not), so 2 x 2 must equal 1 x 4;
    # one fixed precision path: "auto" measures per process and thread count, and may choose another
    path = tmp_path / f"net{epochs}.yaml"
    path.write_text(
        "unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 1, base_channels: 4, norm: instance}\n"
        f"train: {{epochs: {epochs}, steps_per_epoch: 1, batch_size: 4, patch_shape: [32, 32], val_patches: 4, "
        "patience: 0, loss: ce, lr: 0.01, schedule: plateau, precision: fp32, channels_last: \"off\"}\n")
    return path


def _train(tmp_path, output: str, epochs: int, *extra: str):
    args = ["train", "--method", "unet", "--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels"),
            "--config", str(_config(tmp_path, epochs)), "-o", str(tmp_path / output), "--device", "cpu",
            "--threads", "1", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / f"{output}.checkpoints" / "history.json").read_text())
    return result.output, history["records"]


def test_two_processes_follow_the_single_process_loss_curve(tmp_path, blobs_2d, one_torch_thread):
    # one run of 2 processes (starting processes is the slow part): it resumes a single-process run
    # after epoch 2 and trains epochs 3-5, which must equal the uninterrupted single-process run's
    _folders(tmp_path, blobs_2d)
    _, single = _train(tmp_path, "one", 5)
    _, first = _train(tmp_path, "two", 2)
    start = time.monotonic()
    printed, resumed = _train(tmp_path, "two", 5, "--ddp", "2", "--resume", "--overwrite")
    seconds = time.monotonic() - start
    assert "in 2 processes" in printed and (tmp_path / "two" / "weights.safetensors").is_file()
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4, 5]  # epochs 1-2 kept, 3-5 by the 2 processes
    assert resumed[:2] == first
    curves = {key: (np.array([r[key] for r in single]), np.array([r[key] for r in resumed]))
              for key in ("train_loss", "val_loss", "lr")}
    differences = {key: float(np.max(np.abs(a - b) / np.abs(a))) for key, (a, b) in curves.items()}
    print(f"2 processes vs 1: largest relative difference {differences} ({seconds:.1f} s for the 2-process run)")
    # the same patches and the same averaged gradient: only the order of float32 sums differs
    # (all-reduce of the two halves' gradients), about 1e-7 relative after 3 Adam steps
    for key, (expected, actual) in curves.items():
        np.testing.assert_allclose(actual, expected, rtol=1e-5, err_msg=key)
    assert curves["train_loss"][0][-1] < curves["train_loss"][0][0]  # it learned something
