"""Synthetic nuclei and data sets: determinism, exact labels, layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from pixlearn.data.folders import find_pairs, read_split
from pixlearn.data.images import read_image, read_labels
from pixlearn.errors import PixlearnError
from pixlearn.synthetic.nuclei import SyntheticConfig, make_dataset, make_nuclei

CFG_2D = SyntheticConfig(shape=(96, 96))
CFG_3D = SyntheticConfig(shape=(12, 48, 48), radius_px=(5.0, 9.0))


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different objects that share a face."""
    pairs: set[tuple[int, int]] = set()
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1].ravel().astype(int), a[1:].ravel().astype(int)
        m = (x > 0) & (y > 0) & (x != y)
        pairs |= set(zip(np.minimum(x[m], y[m]).tolist(), np.maximum(x[m], y[m]).tolist()))
    return pairs


@pytest.mark.parametrize(
    "changes",
    [
        {"shape": (4, 64)},
        {"shape": (2, 8, 8, 8)},
        {"radius_px": (5.0, 3.0)},
        {"radius_px": (0.0, 3.0)},
        {"eccentricity": 1.0},
        {"touching_fraction": 1.5},
        {"photons": 0.0},
        {"dtype": "float32"},
        {"coverage": 0.95},
        {"n_objects": -1},
        {"read_noise": float("nan")},
    ],
)
def test_config_rejects_bad_values(changes):
    with pytest.raises(ValueError):
        SyntheticConfig(**changes)


def test_config_round_trip(tmp_path):
    cfg = SyntheticConfig(shape=[8, 32, 32], n_objects=7, brightness=[0.2, 0.9])
    assert cfg.shape == (8, 32, 32) and cfg.spacing == (2.0, 1.0, 1.0)
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    cfg.save(tmp_path / "c.json")
    assert SyntheticConfig.load(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        SyntheticConfig.from_dict({"shapes": [8, 8]})


@pytest.mark.parametrize("cfg", [CFG_2D, CFG_3D], ids=["2d", "3d"])
def test_same_seed_same_image(cfg):
    a_image, a_labels = make_nuclei(cfg, np.random.default_rng(7))
    b_image, b_labels = make_nuclei(cfg, np.random.default_rng(7))
    c_image, _ = make_nuclei(cfg, np.random.default_rng(8))
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(a_image, c_image)


@pytest.mark.parametrize(
    "cfg",
    [CFG_2D, CFG_3D, CFG_2D.replace(dtype="uint8", photons=100.0)],
    ids=["2d", "3d", "2d-uint8"],
)
def test_shapes_dtypes_and_exact_labels(cfg):
    image, labels = make_nuclei(cfg, np.random.default_rng(1))
    assert image.shape == labels.shape == cfg.shape
    assert image.dtype == np.dtype(cfg.dtype) and labels.dtype == np.uint16
    n = int(labels.max())
    assert n >= 3
    # labels are 0..N with no gaps
    np.testing.assert_array_equal(np.unique(labels), np.arange(n + 1))
    ring_footprint = ndi.generate_binary_structure(labels.ndim, 1)
    background = labels == 0
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        grow = tuple(slice(max(0, s.start - 3), s.stop + 3) for s in box)
        mine = labels[grow] == index
        _, n_pieces = ndi.label(mine)
        assert n_pieces == 1, f"object {index} has {n_pieces} pieces"
        ring = ndi.binary_dilation(mine, ring_footprint, iterations=2) & ~mine & background[grow]
        if ring.sum() >= 5:
            inside = image[grow][mine].mean()
            assert inside > image[grow][ring].mean(), f"object {index} not brighter than its ring"


def test_touching_neighbours_present():
    _, labels = make_nuclei(CFG_2D.replace(shape=(128, 128)), np.random.default_rng(3))
    assert len(_touching_pairs(labels)) >= 3
    _, labels_3d = make_nuclei(CFG_3D.replace(touching_fraction=0.6), np.random.default_rng(3))
    assert len(_touching_pairs(labels_3d)) >= 1


def test_counts_and_coverage():
    _, labels = make_nuclei(CFG_2D.replace(n_objects=5), np.random.default_rng(0))
    assert 1 <= labels.max() <= 5
    image, labels = make_nuclei(CFG_2D.replace(n_objects=0), np.random.default_rng(0))
    assert labels.max() == 0 and image.std() > 0
    _, labels = make_nuclei(CFG_2D.replace(shape=(128, 128), coverage=0.3), np.random.default_rng(0))
    assert 0.15 < np.mean(labels > 0) < 0.45


def test_background_follows_photon_and_read_noise():
    cfg = CFG_2D.replace(
        shape=(128, 128), n_objects=0, background=0.1, background_variation=0.0,
        photons=300.0, read_noise=3.0, offset=20.0,
    )
    image, _ = make_nuclei(cfg, np.random.default_rng(4))
    counts = image.astype(np.float64)
    # Poisson(30) + offset 20 + N(0, 3^2): mean 50, variance 30 + 9 (+1/12 from rounding)
    assert abs(counts.mean() - 50.0) < 0.5
    assert abs(counts.var() - 39.1) < 4.0


def test_uneven_background_varies_smoothly():
    cfg = CFG_2D.replace(shape=(128, 128), n_objects=0, background_variation=0.08, photons=1000.0)
    image, _ = make_nuclei(cfg, np.random.default_rng(5))
    smooth = ndi.uniform_filter(image.astype(np.float64), 16)[16:-16, 16:-16]
    # the field's amplitude is 0.08 * 1000 counts; Poisson noise averages out in 16x16 blocks
    assert smooth.max() - smooth.min() > 20.0


def test_make_dataset_layout(tmp_path):
    cfg = SyntheticConfig(shape=(48, 48), radius_px=(4.0, 7.0))
    out = make_dataset(tmp_path / "synth", 2, 1, cfg, seed=3)
    root = tmp_path / "synth"
    pairs = find_pairs(root / "images", root / "labels")
    assert [p for split in ("train", "test") for p in out[split]] == pairs
    split = read_split(root)
    assert split == {"train": ["nuclei_000", "nuclei_001"], "test": ["nuclei_002"]}
    assert json.loads((root / "synthetic.json").read_text())["seed"] == 3
    image, axes = read_image(pairs[0][0])
    labels = read_labels(pairs[0][1])
    assert axes == "YX" and image.dtype == np.uint16 and labels.max() >= 1
    # image i comes from the i-th child seed, whatever the total
    expected, _ = make_nuclei(cfg, np.random.default_rng(np.random.SeedSequence(3).spawn(1)[0]))
    np.testing.assert_array_equal(image, expected)
    with pytest.raises(PixlearnError, match="overwrite"):
        make_dataset(root, 1, 0, cfg, seed=3)
    make_dataset(root, 1, 0, cfg, seed=3, overwrite=True)
    assert len(find_pairs(root / "images", root / "labels")) == 1


def test_make_dataset_3d(tmp_path):
    cfg = SyntheticConfig(shape=(8, 32, 32), radius_px=(4.0, 6.0))
    out = make_dataset(tmp_path, 1, 1, cfg, seed=0)
    image, axes = read_image(out["test"][0][0])
    assert axes == "ZYX" and image.shape == (8, 32, 32)
    with pytest.raises(ValueError, match="at least one"):
        make_dataset(tmp_path / "none", 0, 0, cfg)
