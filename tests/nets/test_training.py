"""The training loop: learning, checkpoints, resumption, time limit."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from pixlearn.nets import UNet, UNetConfig
from pixlearn.nets.patches import NO_AUGMENT, AugmentConfig, PatchDataset
from pixlearn.nets.training import TrainConfig, train

TINY = UNetConfig(ndim=2, depth=2, base_channels=4, out_channels=2)



pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _data(image, labels, patch, n, seed=0, augmentation=NO_AUGMENT):
    x = ((image - image.min()) / np.ptp(image))[..., None].astype(np.float32)
    return PatchDataset([x], [(labels > 0).astype(np.int64)], patch, n, seed=seed, augmentation=augmentation,
                        foreground=[labels > 0])


def _net(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return UNet(cfg)


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_train_config_round_trip_and_validation():
    cfg = TrainConfig(patch_shape=(16, 16), schedule="plateau", time_limit_s=3.5, augmentation=AugmentConfig(elastic=True))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="yes")
    with pytest.raises(ValueError, match="patch_shape"):
        TrainConfig(patch_shape=(0, 4))


def test_loss_decreases_and_beats_trivial_baseline(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=4, steps_per_epoch=8, batch_size=4, patch_shape=(32, 32), lr=1e-2, patience=0)
    net = _net()
    history = train(net, _data(image, labels, (32, 32), 32, augmentation=AugmentConfig()),
                    _data(image, labels, (32, 32), 8, seed=9), cfg, device="cpu")
    losses = [r["val_loss"] for r in history.records]
    assert len(losses) == 4 and min(losses[1:]) < losses[0]
    x = torch.from_numpy(((image - image.min()) / np.ptp(image))[None, None].astype(np.float32))
    with torch.no_grad():
        predicted = net.eval()(x).argmax(1)[0].numpy()
    accuracy = float(np.mean(predicted == (labels > 0)))
    baseline = max(np.mean(labels > 0), np.mean(labels == 0))  # always the majority class
    assert accuracy > baseline + 0.05


@pytest.mark.parametrize(("precision", "channels_last"), [("auto", "auto"), ("fp32", "on")])
def test_resumed_run_matches_uninterrupted(blobs_2d, tmp_path, precision, channels_last):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=2, patch_shape=(16, 16), patience=0,
                      precision=precision, channels_last=channels_last)  # channels-last: moments' strides

    def datasets():
        return _data(image, labels, (16, 16), 4, augmentation=AugmentConfig()), _data(image, labels, (16, 16), 2, seed=5)

    straight = _net()
    full = train(straight, *datasets(), cfg, checkpoint_dir=tmp_path / "a", device="cpu")

    class Crash(RuntimeError):
        pass

    def crash_after_first_epoch(epoch, record, model):
        if epoch == 1:
            raise Crash  # like kill -9 right after the epoch-1 checkpoint was written

    with pytest.raises(Crash):
        train(_net(), *datasets(), cfg, checkpoint_dir=tmp_path / "b", callbacks=[crash_after_first_epoch], device="cpu")
    assert (tmp_path / "b" / "last.json").is_file()
    (tmp_path / "b" / "epoch-0099").mkdir()  # an unfinished newer checkpoint is never read
    resumed_net = _net(seed=123)  # different initial weights: they must come from the checkpoint
    resumed = train(resumed_net, *datasets(), cfg, checkpoint_dir=tmp_path / "b", resume=True, device="cpu")
    assert [r["val_loss"] for r in resumed.records] == [r["val_loss"] for r in full.records]
    assert resumed.best_epoch == full.best_epoch
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed_net.state_dict()[key]), key
    for name in ("history.json", "history.csv", "curves.png", "best.safetensors", "last.json"):
        assert (tmp_path / "b" / name).is_file(), name
    assert len(json.loads((tmp_path / "b" / "history.json").read_text())["records"]) == 3


def test_training_is_repeatable_with_a_seed(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, patch_shape=(16, 16), schedule="plateau")
    nets = [_net(), _net()]
    for net in nets:
        train(net, _data(image, labels, (16, 16), 4, augmentation=AugmentConfig()), _data(image, labels, (16, 16), 2),
              cfg, device="cpu")
    for key, value in nets[0].state_dict().items():
        assert torch.equal(value, nets[1].state_dict()[key])


def test_time_limit_stops_and_keeps_best(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=50, steps_per_epoch=4, batch_size=2, patch_shape=(16, 16), time_limit_s=1e-3)
    history = train(_net(), _data(image, labels, (16, 16), 8), _data(image, labels, (16, 16), 2), cfg, device="cpu")
    assert history.stop_reason == "time_limit"
    assert len(history.records) == 1 and history.best_epoch == 1


def test_keep_chooses_the_best_or_the_last_epochs_weights(blobs_2d):
    """Validation on the inverted labels gets worse as training learns the labels, so best and last
    differ: "best" leaves the weights of an earlier epoch, "last" those the run ended with."""
    image, labels = blobs_2d
    finals = {}

    def remember(epoch, record, model):
        finals[epoch] = _state(model)

    held = {}
    for keep in ("best", "last"):
        cfg = TrainConfig(epochs=3, steps_per_epoch=4, batch_size=2, patch_shape=(16, 16), lr=1e-2, patience=0,
                          keep=keep)
        net = _net()
        inverted = np.where(labels > 0, 0, 1)
        history = train(net, _data(image, labels, (16, 16), 8), _data(image, inverted, (16, 16), 2), cfg,
                        callbacks=[remember], device="cpu")
        held[keep] = (history, _state(net))
    best_history, best_state = held["best"]
    last_history, last_state = held["last"]
    assert best_history.kept == "best" and last_history.kept == "last"
    assert last_history.summary()["kept_epoch"] == 3
    assert all(torch.equal(v, finals[3][k]) for k, v in last_state.items())
    assert best_history.best_epoch < 3  # the premise: the last epoch is not the best
    assert not all(torch.equal(v, last_state[k]) for k, v in best_state.items())
    with pytest.raises(ValueError, match="keep"):
        TrainConfig(keep="first")


def test_callback_stops_training(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=5, steps_per_epoch=1, batch_size=2, patch_shape=(16, 16))
    history = train(_net(), _data(image, labels, (16, 16), 2), _data(image, labels, (16, 16), 2), cfg,
                    callbacks=[lambda epoch, record, model: epoch >= 2], device="cpu")
    assert history.stop_reason == "callback" and len(history.records) == 2


def test_train_3d(blobs_3d):
    image, labels = blobs_3d
    cfg3 = UNetConfig(ndim=3, depth=2, base_channels=4, out_channels=2, pool_kernels=((1, 2, 2), (2, 2, 2)))
    cfg = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=2, patch_shape=(8, 16, 16))
    history = train(_net(cfg3), _data(image, labels, (8, 16, 16), 4), _data(image, labels, (8, 16, 16), 2), cfg,
                    device="cpu")
    assert len(history.records) == 2 and np.isfinite(history.best_val_loss)


def test_train_bad_arguments(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=1, steps_per_epoch=4, batch_size=2, patch_shape=(16, 16))
    data = _data(image, labels, (16, 16), 2)
    with pytest.raises(ValueError, match="an epoch needs"):
        train(_net(), data, data, cfg, device="cpu")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train(_net(), _data(image, labels, (16, 16), 8), data, cfg, resume=True, device="cpu")


def test_a_time_limited_run_trains_for_its_budget_and_ends_annealed(blobs_2d):
    # no epoch count: 3 s of training whatever the number of epochs (the default cap was 100);
    # patience=0 keeps early stopping (tested on its own) out of this measurement
    image, labels = blobs_2d
    limit = 3.0
    cfg = TrainConfig(steps_per_epoch=2, batch_size=2, patch_shape=(16, 16), lr=1e-2, time_limit_s=limit, patience=0)
    start = time.monotonic()
    history = train(_net(), _data(image, labels, (16, 16), 4), _data(image, labels, (16, 16), 2, seed=9), cfg,
                    device="cpu")
    wall = time.monotonic() - start
    used = history.records[-1]["elapsed_s"]
    print(f"budget {limit} s: {used:.2f} s used ({used / limit:.1%}), train() took {wall:.2f} s, "
          f"{len(history.records)} epochs, last lr {history.records[-1]['lr']:.3g}")
    assert history.stop_reason == "time_limit"
    assert used >= 0.9 * limit
    assert wall <= limit + 1.0  # validation and checkpoints fit inside the budget (1 s for a busy machine)
    rates = [r["lr"] for r in history.records]
    low = cfg.lr / 100
    assert rates[-1] == pytest.approx(low, rel=0.05)  # the last step ran at the annealed minimum
    peak = rates.index(max(rates))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1:]))  # after the warm-up: only down
    assert max(rates) > 0.5 * cfg.lr


def test_explicit_epochs_still_cap_a_time_limited_run(blobs_2d):
    image, labels = blobs_2d
    cfg = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=2, patch_shape=(16, 16), time_limit_s=600.0, patience=0)
    history = train(_net(), _data(image, labels, (16, 16), 4), _data(image, labels, (16, 16), 2), cfg, device="cpu")
    assert history.stop_reason == "completed" and len(history.records) == 3


def test_early_stopping_ends_a_time_limited_run_whose_validation_is_flat(blobs_2d):
    # a learning rate of 1e-12 and no BatchNorm: the validation loss stays where it is
    image, labels = blobs_2d
    flat_net = UNetConfig(ndim=2, depth=1, base_channels=4, out_channels=2, norm="none")
    cfg = TrainConfig(steps_per_epoch=1, batch_size=2, patch_shape=(16, 16), lr=1e-12, time_limit_s=600.0,
                      patience=3)
    history = train(_net(flat_net), _data(image, labels, (16, 16), 2), _data(image, labels, (16, 16), 2), cfg,
                    device="cpu")
    assert history.stop_reason == "early_stopping" and len(history.records) == 1 + cfg.patience
