"""NetworkModel (PixelModel protocol, metadata round trip) and fit_network on all three tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.nets import UNetConfig
from pixlearn.nets.fit import FitOptions, fit_network
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.training import TrainConfig

CPU = FitOptions(device="cpu")
QUICK = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=2, patch_shape=(16, 16), val_patches=2)



pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _tiny(out_channels=2, ndim=2, **kw):
    return UNetConfig(ndim=ndim, depth=2, base_channels=4, out_channels=out_channels, **kw)


def _pairs(blobs, n=2):
    """`n` shifted copies of a fixture image with its labels (canonical images)."""
    image, labels = blobs
    return ([np.roll(image, 3 * i, axis=-1)[..., None] for i in range(n)],
            [np.roll(labels, 3 * i, axis=-1) for i in range(n)])


def _round_trip(model: NetworkModel) -> NetworkModel:
    """What pixlearn.models.model_file does: JSON metadata + safetensors weights."""
    meta = json.loads(json.dumps(model.to_metadata()))
    state = load_safetensors(save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}))
    return NetworkModel.from_metadata(meta, state, device="cpu")


def test_semantic_fit_predict_and_round_trip(blobs_2d, tmp_path):
    images, labels = _pairs(blobs_2d)
    targets = [(lab > 0).astype(np.int64) for lab in labels]
    model = fit_network(images, targets, "semantic", unet=_tiny(), train_config=QUICK, class_names=("bg", "nuclei"),
                        options=FitOptions(checkpoint_dir=tmp_path, device="cpu"))
    assert isinstance(model, PixelModel)
    assert (model.kind, model.task, model.ndim, model.n_channels, model.n_outputs) == ("network", "semantic", 2, 1, 2)
    assert model.halo == (28, 28) and model.size_divisor == 4
    block = images[0][:13, :7].astype(np.float32)  # odd shape
    probs = model.predict_raw(block)
    assert probs.shape == (13, 7, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    loaded = _round_trip(model)
    assert loaded.to_metadata() == model.to_metadata()
    np.testing.assert_array_equal(loaded.predict_raw(images[1]), model.predict_raw(images[1]))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    meta = model.to_metadata()
    assert meta["class_names"] == ["bg", "nuclei"] and meta["history"]["epochs"] == 2
    assert TrainConfig.from_dict(meta["train"]).patch_shape == (16, 16)
    assert (tmp_path / "curves.png").is_file()


def test_predict_batch_matches_single(blobs_2d):
    model = NetworkModel(_tiny(), "semantic", device="cpu")
    blocks = np.stack([blobs_2d[0][:16, :16], blobs_2d[0][16:32, :16]])[..., None].astype(np.float32)
    batch = model.predict_batch(blocks)
    np.testing.assert_allclose(batch[1], model.predict_raw(blocks[1]), atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        model.predict_raw(blocks)


def test_instances_fit_tunes_thresholds(blobs_2d):
    images, labels = _pairs(blobs_2d, 3)
    model = fit_network(images, labels, "instances", unet=_tiny(), train_config=QUICK, options=CPU)
    assert model.n_outputs == 2 and set(model.thresholds) >= {"prob_thresh", "seed_thresh"}
    out = model.predict_raw(images[0])
    assert out.shape == images[0].shape[:-1] + (2,) and 0.0 <= out.min() and out.max() <= 1.0
    loaded = _round_trip(model)
    assert loaded.thresholds == model.thresholds
    assert "val_instance_score" in loaded.to_metadata()["history"]
    sizes = np.concatenate([np.bincount(lab.ravel())[1:] for lab in labels])
    assert loaded.object_diameter == pytest.approx(np.median(2 * np.sqrt(sizes[sizes > 0] / np.pi)))


def test_restore_fit(blobs_2d):
    image, labels = blobs_2d
    clean = ((labels > 0) * 0.6 + 0.2).astype(np.float32)[..., None] * 100
    noisy = image[..., None] * 100
    model = fit_network([noisy, noisy[::-1]], [clean, clean[::-1]], "restore", unet=_tiny(out_channels=1),
                        train_config=QUICK, normalization=NormalizeConfig(pmin=0.5, pmax=99.5), options=CPU)
    assert model.task == "restore" and model.n_outputs == 1
    assert model.train_config.loss == "l1" and not model.train_config.augmentation.intensity
    assert model.predict_raw(noisy.astype(np.float32)).shape == noisy.shape
    assert _round_trip(model).normalization == NormalizeConfig(pmin=0.5, pmax=99.5)


def test_fit_3d_and_patch_shrinking(blobs_3d, caplog):
    images, labels = _pairs(blobs_3d)
    targets = [(lab > 0).astype(np.int64) for lab in labels]
    cfg = QUICK.replace(patch_shape=(16, 16, 16))  # deeper than the 10-plane stacks: shrunk
    unet = _tiny(ndim=3, pool_kernels=((1, 2, 2), (2, 2, 2)))
    with caplog.at_level("WARNING"):
        model = fit_network(images, targets, "semantic", unet=unet, train_config=cfg, options=CPU)
    assert model.train_config.patch_shape == (10, 16, 16)
    assert "does not fit" in caplog.text
    assert model.predict_raw(images[0].astype(np.float32)).shape == images[0].shape[:-1] + (2,)


def test_scribbles_train(blobs_2d):
    image, labels = blobs_2d
    scribbles = np.full(labels.shape, -1, np.int64)
    scribbles[labels == 1] = 1
    scribbles[:3, :] = 0
    model = fit_network([image[..., None]], [scribbles], "semantic", unet=_tiny(), train_config=QUICK, options=CPU)
    assert np.isfinite(model.history["best_val_loss"])


@pytest.mark.parametrize("task", ["semantic", "instances"])
def test_no_foreground_raises(blobs_2d, task):
    images, labels = _pairs(blobs_2d)
    with pytest.raises(PixlearnError, match="nothing to learn"):
        fit_network(images, [np.zeros_like(lab) for lab in labels], task, unet=_tiny(), train_config=QUICK)


def test_bad_pairs_raise(blobs_2d):
    images, labels = _pairs(blobs_2d)
    with pytest.raises(PixlearnError, match="pair 1"):
        fit_network(images, [labels[0], labels[1][:-2]], "semantic", unet=_tiny(), train_config=QUICK)
    with pytest.raises(PixlearnError, match="restore pair 0"):
        fit_network(images, [images[0][:-1], images[1]], "restore", unet=_tiny(1), train_config=QUICK)
    with pytest.raises(PixlearnError, match="smaller than the network"):
        fit_network([images[0][:3, :3]], [np.eye(3, dtype=np.int64)], "semantic",
                    unet=_tiny(), train_config=QUICK)
    with pytest.raises(PixlearnError, match="images but"):
        fit_network(images, labels[:1], "semantic", unet=_tiny(), train_config=QUICK)
    with pytest.raises(PixlearnError, match="output"):
        fit_network(images, [(lab > 0).astype(np.int64) for lab in labels], "semantic", unet=_tiny(3), train_config=QUICK)
    with pytest.raises(PixlearnError, match="task"):
        fit_network(images, labels, "denoise")


def test_from_metadata_rejects_wrong_weights():
    model = NetworkModel(_tiny(), "semantic", device="cpu")
    meta = model.to_metadata()
    meta["unet"]["base_channels"] = 8
    with pytest.raises(ValueError, match="weights do not fit"):
        NetworkModel.from_metadata(meta, model.state_dict())
    with pytest.raises(ValueError, match="2 network outputs"):
        NetworkModel(_tiny(3), "instances")


def test_fit_keeps_explicit_batch_size(blobs_2d):
    images, labels = _pairs(blobs_2d)
    targets = [(lab > 0).astype(np.int64) for lab in labels]
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=8, val_patches=2)  # patch shape: from the data
    model = fit_network(images, targets, "semantic", unet=_tiny(), train_config=cfg, options=CPU)
    assert model.train_config.batch_size == 8 and model.train_config.is_resolved
    assert model.to_metadata()["train"]["batch_size"] == 8


def test_thin_stacks_train_a_2d_network_applied_plane_by_plane(blobs_3d):
    from pixlearn.nets.autoconfig import choose_layout
    from pixlearn.predict import apply_model

    images, labels = _pairs(blobs_3d)
    assert images[0].ndim == 4 and images[0].shape[0] < 16 and choose_layout([im.shape for im in images]) == 2
    targets = [(lab > 0).astype(np.int64) for lab in labels]
    model = fit_network(images, targets, "semantic", train_config=QUICK, options=CPU)
    assert model.ndim == 2  # trained on the planes
    stack = images[0].astype(np.float32)
    out = apply_model(model, stack)
    assert out.shape == stack.shape[:-1]
    planes = np.stack([apply_model(model, plane) for plane in stack])
    assert (out == planes).mean() > 0.99  # the same network on each plane (blending may differ at edges)
    given_3d = fit_network(images, targets, "semantic", unet=_tiny(ndim=3, pool_kernels=((1, 2, 2), (1, 2, 2))),
                           train_config=QUICK.replace(patch_shape=(4, 16, 16)), options=CPU)
    assert given_3d.ndim == 3  # a 3D network asked for is kept
