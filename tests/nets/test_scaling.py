"""Training-time scale normalisation (pixlearn.nets.scaling) and what fit_network records of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixlearn.data.labels import median_object_diameter
from pixlearn.errors import PixlearnError
from pixlearn.nets.config import TrainConfig
from pixlearn.nets.patches import NO_AUGMENT, PatchDataset
from pixlearn.nets.scaling import (
    draw_zoom,
    pad_to_shape,
    rescale_pair,
    rescale_pairs,
    resize_patch,
    resolve_target_diameter,
    scale_factor,
    scale_training_pairs,
    zoomed_region,
)


def _grid_of_discs(size: int, radius: float, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Separate discs of one radius on a grid, an image bright on them, and their labels."""
    rows, cols = np.indices((size, size))
    labels = np.zeros((size, size), np.uint16)
    centres = range(spacing // 2, size - spacing // 2 + 1, spacing)
    for n, (r, c) in enumerate(((r, c) for r in centres for c in centres), start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = n
    image = np.where(labels > 0, 0.8, 0.1).astype(np.float32)[..., None]
    return image, labels


def test_small_and_large_objects_reach_the_same_diameter():
    small, large = _grid_of_discs(64, 4.0, 16), _grid_of_discs(96, 12.0, 32)
    assert median_object_diameter([small[1]]) < 10 < 20 < median_object_diameter([large[1]])
    images, labels = rescale_pairs([small[0], large[0]], [small[1], large[1]], 16.0, "instances")
    for before, image, lab in zip((small, large), images, labels):
        assert median_object_diameter([lab]) == pytest.approx(16.0, rel=0.08)
        assert lab.dtype == before[1].dtype and image.dtype == np.float32 and image.shape[-1] == 1
        assert len(np.unique(lab)) == len(np.unique(before[1]))  # every object survives, none is made
        assert image.shape[:-1] == lab.shape
    for before, lab in zip((small, large), labels):  # both axes by the factor of the image
        factor = 16.0 / median_object_diameter([before[1]])
        assert lab.shape == (round(before[1].shape[0] * factor),) * 2
    assert images[0][labels[0] > 0].mean() > 0.7 > 0.2 > images[0][labels[0] == 0].mean()


def test_objects_too_small_to_survive_and_images_without_objects():
    image, labels = _grid_of_discs(64, 1.0, 16)
    _, shrunk = rescale_pair(image, labels, 0.25)
    assert set(np.unique(shrunk)) <= set(np.unique(labels)) and shrunk.shape == (16, 16)
    assert scale_factor(np.zeros((20, 20), int), 16.0, "instances") == 1.0
    assert scale_factor(labels, 1e4, "instances") == 4.0  # clipped to SCALE_LIMITS
    empty = np.zeros((20, 20), np.uint16)
    images, out = rescale_pairs([np.ones((20, 20, 1), np.float32)], [empty], 16.0, "instances")
    assert out[0].shape == (20, 20) and images[0].shape == (20, 20, 1)


def test_semantic_targets_rescaled_by_nearest_neighbour():
    _, labels = _grid_of_discs(64, 4.0, 16)
    classes = np.where(labels > 0, 1, 0).astype(np.int64)
    classes[:4] = -1  # unannotated rows stay unannotated
    assert scale_factor(classes, 16.0, "semantic") == pytest.approx(16.0 / median_object_diameter([labels]))
    _, out = rescale_pairs([np.zeros((64, 64, 1), np.float32)], [classes], 16.0, "semantic")
    assert out[0].dtype == np.int64 and set(np.unique(out[0])) == {-1, 0, 1}


def test_target_diameter_resolution():
    _, labels = _grid_of_discs(64, 4.0, 16)
    assert resolve_target_diameter(None, [labels], "instances") is None
    assert resolve_target_diameter(20, [labels], "instances") == 20.0
    assert resolve_target_diameter("auto", [labels], "instances") == pytest.approx(median_object_diameter([labels]))
    with pytest.raises(PixlearnError, match="no objects"):
        resolve_target_diameter("auto", [np.zeros((8, 8), int)], "instances")
    with pytest.raises(PixlearnError, match="instances or semantic"):
        resolve_target_diameter(12.0, [labels], "restore")
    with pytest.raises(ValueError, match="target_diameter"):
        TrainConfig(target_diameter="big")
    with pytest.raises(ValueError, match="scale_jitter"):
        TrainConfig(scale_jitter=0.8)
    assert TrainConfig.from_dict(TrainConfig(target_diameter="auto").to_dict()).target_diameter == "auto"


def test_zoom_regions_padding_and_patch_resizing():
    rng = np.random.default_rng(0)
    zooms = [draw_zoom(rng, 1.25) for _ in range(200)]
    assert 1 / 1.25 <= min(zooms) < 0.85 and 1.15 < max(zooms) <= 1.25
    assert draw_zoom(rng, 1.0) == 1.0
    assert zoomed_region((16, 16), (64, 64), 2.0) == (8, 8) and zoomed_region((16, 16), (64, 64), 0.5) == (32, 32)
    padded = pad_to_shape(np.ones((3, 5, 2), np.float32), (8, 4), np.array([0.5, 0.25], np.float32))
    assert padded.shape == (8, 5, 2) and padded[0, 0].tolist() == [0.5, 0.25] and padded[2:5].min() == 1.0 and padded[5:].max() == 0.5
    image, target = resize_patch(np.zeros((8, 8, 1), np.float32), np.arange(64).reshape(8, 8), (16, 16))
    assert image.shape == (16, 16, 1) and target.shape == (16, 16) and set(np.unique(target)) == set(range(64))


def test_patch_dataset_with_scale_jitter_is_deterministic():
    image, labels = _grid_of_discs(64, 4.0, 16)
    targets = [(labels > 0).astype(np.int64)]
    ds = PatchDataset([image], targets, (16, 16), 8, seed=3, augmentation=NO_AUGMENT, scale_jitter=1.25)
    again = PatchDataset([image], targets, (16, 16), 8, seed=3, augmentation=NO_AUGMENT, scale_jitter=1.25)
    for i in range(8):
        x, y = ds[i]
        assert tuple(x.shape) == (1, 16, 16) and tuple(y.shape) == (16, 16)
        assert set(np.unique(y.numpy())) <= {0, 1}
        assert (x.numpy() == again[i][0].numpy()).all()
    plain = PatchDataset([image], targets, (16, 16), 2, seed=3, augmentation=NO_AUGMENT)
    assert plain.scale_jitter == 1.0


def test_fit_records_the_target_diameter(one_torch_thread):
    from pixlearn.nets import UNetConfig
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.model import NetworkModel

    small, large = _grid_of_discs(40, 3.0, 10), _grid_of_discs(48, 8.0, 24)
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, patch_shape=(32, 32), val_patches=2,
                      target_diameter=12.0)
    unet = UNetConfig(ndim=2, depth=2, base_channels=4, out_channels=2)
    model = fit_network([small[0], large[0], small[0]], [small[1], large[1], small[1]], "instances", unet=unet,
                        train_config=cfg, options=FitOptions(device="cpu"))
    assert model.object_diameter == 12.0 and model.train_config.target_diameter == 12.0
    meta = json.loads(json.dumps(model.to_metadata()))
    assert meta["object_diameter"] == 12.0 and meta["train"]["target_diameter"] == 12.0
    assert NetworkModel.from_metadata(meta, model.state_dict(), device="cpu").object_diameter == 12.0
    _, _, _, auto = scale_training_pairs([small[0], large[0]], [small[1], large[1]], None,
                                         cfg.replace(target_diameter="auto"), "instances")
    assert auto.target_diameter == pytest.approx(median_object_diameter([small[1], large[1]]))
