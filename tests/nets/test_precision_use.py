"""The precision path in use: training records it, prediction follows it, bf16 stays close to fp32."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pixlearn.nets import UNet, UNetConfig, network_probe
from pixlearn.nets.config import TrainConfig
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.network_probe import CACHE_MODE, network_key, probe_batch
from pixlearn.nets.patches import NO_AUGMENT, PatchDataset
from pixlearn.nets.precision import BF16_TOLERANCE
from pixlearn.nets.precision_probe import PATHS, cache_file, machine_key, write_timings
from pixlearn.nets.training import History, train
from pixlearn.nets.unet import size_divisor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=2, base_channels=4)


def _cache(monkeypatch, tmp_path, mode: str, seconds: dict[str, float]) -> None:
    """A cache folder of this test holding `seconds` as this machine's timings of `mode`."""
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path))
    key = machine_key()
    write_timings(cache_file(key, mode), key, mode, {name: [seconds[name]] * 3 for name in PATHS})


def _network_cache(monkeypatch, tmp_path, blocks: np.ndarray, seconds: dict[str, float]) -> None:
    """A cache folder of this test holding `seconds` as the timings of TINY on the batch `blocks`."""
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path))
    # a first batch smaller than a nominal tile is measured at the nominal tile's size
    key = network_key(TINY.to_dict(), probe_batch((blocks.shape[0], blocks.shape[-1]) + blocks.shape[1:-1],
                                                  size_divisor(TINY)))
    write_timings(cache_file(key, CACHE_MODE), key, CACHE_MODE, {name: [t] * 3 for name, t in seconds.items()})


def _net(cfg: UNetConfig = TINY, seed: int = 0) -> UNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(cfg).eval()


def _blocks(ndim: int, seed: int = 1) -> np.ndarray:
    shape = (2,) + (8,) * (ndim - 2) + (24, 20, 1)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ------------------------------------------------------------------------------ the legacy setting


def test_train_config_reads_the_autocast_of_older_files():
    assert TrainConfig.from_dict({"autocast": "on"}).precision == "bf16"
    assert TrainConfig.from_dict({"autocast": "off", "channels_last": "on"}).precision == "fp32"
    assert TrainConfig.from_dict({"autocast": "auto"}) == TrainConfig()
    assert "autocast" not in TrainConfig().to_dict()
    cfg = TrainConfig(precision="bf16", channels_last="off")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="not both"):
        TrainConfig.from_dict({"autocast": "on", "precision": "fp32"})
    with pytest.raises(ValueError, match="autocast"):
        TrainConfig.from_dict({"autocast": "yes"})
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


# ------------------------------------------------------------------------------ prediction


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("task", ["semantic", "instances"])
def test_bf16_predictions_stay_within_the_stated_tolerance(ndim, task):
    cfg = TINY.replace(ndim=ndim)
    net = _net(cfg)
    fp32 = NetworkModel(cfg, task, net, device="cpu")
    bf16 = NetworkModel(cfg, task, net, device="cpu", precision="bf16")
    blocks = _blocks(ndim)
    exact, rounded = fp32.predict_batch(blocks), bf16.predict_batch(blocks)
    assert fp32.precision_path.name == "fp32+channels_last" and bf16.precision_path.name == "bf16+channels_last"
    assert rounded.dtype == np.float32 and rounded.shape == exact.shape
    assert not np.array_equal(rounded, exact)  # bf16 really ran
    np.testing.assert_allclose(rounded, exact, rtol=0, atol=BF16_TOLERANCE)


def test_auto_prediction_follows_the_cached_timings(monkeypatch, tmp_path):
    monkeypatch.setattr(network_probe, "cpu_info", lambda: ("a CPU with bf16", ("avx512_bf16",)))
    blocks = _blocks(2)
    net = _net()
    reference = NetworkModel(TINY, "semantic", net, device="cpu").predict_batch(blocks)
    _network_cache(monkeypatch, tmp_path, blocks,
                   {"fp32": 0.5, "fp32+channels_last": 1.0, "bf16": 2.0, "bf16+channels_last": 2.0})
    model = NetworkModel(TINY, "semantic", net, device="cpu", precision="auto")
    result = model.predict_batch(blocks)
    assert (model.precision_path.name, model.precision_path.source) == ("fp32", "cached")
    assert model._fast[0][1] is False  # the fast copy was built contiguous
    np.testing.assert_allclose(result, reference, rtol=0, atol=1e-5)  # layout only: float rounding
    _network_cache(monkeypatch, tmp_path, blocks,
                   {"fp32": 1.0, "fp32+channels_last": 1.0, "bf16": 0.9, "bf16+channels_last": 0.5})
    assert model.precision_path.name == "fp32"  # resolved once per model ...
    result = model.set_precision("auto").predict_batch(blocks)
    assert model.precision_path.name == "bf16+channels_last"  # ... until set again
    np.testing.assert_allclose(result, reference, rtol=0, atol=BF16_TOLERANCE)


def test_precision_setting_is_checked_and_not_pickled():
    model = NetworkModel(TINY, "semantic", _net(), device="cpu", precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        model.set_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        NetworkModel(TINY, "semantic", device="cpu", precision="half")
    model.predict_batch(_blocks(2))
    assert model._path is not None
    copy = pickle.loads(pickle.dumps(model))
    assert copy.precision == "bf16" and copy._path is None  # resolved again where it predicts
    assert "precision" not in model.to_metadata()  # a setting of this process, not of the file


# ------------------------------------------------------------------------------ training


def _data(blobs_2d, n: int) -> PatchDataset:
    image, labels = blobs_2d
    x = ((image - image.min()) / np.ptp(image))[..., None].astype(np.float32)
    return PatchDataset([x], [(labels > 0).astype(np.int64)], (16, 16), n, seed=0, augmentation=NO_AUGMENT)


QUICK = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, val_patches=2, patience=0)


@pytest.mark.parametrize(("setting", "name"), [("fp32", "fp32"), ("bf16", "bf16")])
def test_training_records_its_forced_path(blobs_2d, setting, name):
    history = train(_net().train(), _data(blobs_2d, 4), _data(blobs_2d, 2), QUICK.replace(precision=setting),
                    device="cpu")
    assert history.precision == {"precision": name, "precision_source": "forced"}
    assert history.summary()["precision"] == name
    assert np.isfinite(history.records[-1]["train_loss"])
    assert History.from_dict(history.to_dict()).precision == history.precision


def test_auto_training_takes_the_cached_path(blobs_2d, monkeypatch, tmp_path):
    _cache(monkeypatch, tmp_path, "train", {"fp32": 1.0, "fp32+channels_last": 0.7, "bf16": 2.0, "bf16+channels_last": 2.0})
    net = _net().train()
    history = train(net, _data(blobs_2d, 4), _data(blobs_2d, 2), QUICK, device="cpu")
    assert (history.precision["precision"], history.precision["precision_source"]) == ("fp32+channels_last", "cached")
    assert history.precision["precision_timings_s"]["fp32"] == 1.0
    assert all(p.is_contiguous() for p in net.parameters())  # handed back in the default layout


def test_fitted_model_keeps_the_path_in_its_metadata(blobs_2d):
    from pixlearn.nets.fit import FitOptions, fit_network

    image, labels = blobs_2d
    model = fit_network([image[..., None]] * 2, [(labels > 0).astype(np.int64)] * 2, "semantic", unet=TINY,
                        train_config=QUICK.replace(precision="fp32", patch_shape=(16, 16)),
                        options=FitOptions(device="cpu"))
    history = model.to_metadata()["history"]
    assert (history["precision"], history["precision_source"]) == ("fp32", "forced")
    assert model.to_metadata()["train"]["precision"] == "fp32"
