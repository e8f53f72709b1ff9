from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import tifffile

import pixlearn.data.checks
import pixlearn.data.formats
import pixlearn.data.images
import pixlearn.data.writers
from pixlearn.data.atomic import atomic_path
from pixlearn.data.folders import find_pairs, list_images
from pixlearn.data.images import (
    file_stem,
    open_image,
    read_canonical,
    read_image,
    read_labels,
    write_image,
)
from pixlearn.data.pairs import load_pairs
from pixlearn.errors import PixlearnError


@pytest.mark.parametrize("module", [pixlearn.data.checks, pixlearn.data.formats])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, module.__name__


def test_images_still_exports_the_names_that_moved() -> None:
    # checks, formats and writers were split out of images; their public names stay importable there
    homes = {"checks": pixlearn.data.checks, "formats": pixlearn.data.formats, "writers": pixlearn.data.writers}
    for name in pixlearn.data.images.__all__:
        value = getattr(pixlearn.data.images, name)
        owners = [m for m in homes.values() if getattr(m, name, None) is value]
        assert owners or getattr(value, "__module__", None) == "pixlearn.data.images", name


@pytest.mark.parametrize("suffix", [".tif", ".png", ".npy", ".zarr"])
def test_write_read_roundtrip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(17, 23), dtype=np.uint8)
    path = write_image(tmp_path / f"a{suffix}", image)
    back, axes = read_image(path)
    assert axes == "YX"
    np.testing.assert_array_equal(back, image)
    assert [p.name for p in tmp_path.iterdir()] == [f"a{suffix}"]  # no temporary left behind


def test_tiff_axes_metadata_and_rgb(tmp_path):
    rng = np.random.default_rng(2)
    stack = rng.random((3, 2, 8, 9)).astype(np.float32)  # ZCYX
    write_image(tmp_path / "s.tif", stack, axes="ZCYX")
    canon = read_canonical(tmp_path / "s.tif")
    assert canon.shape == (3, 8, 9, 2)
    np.testing.assert_array_equal(canon[1, :, :, 0], stack[1, 0])
    rgb = rng.integers(0, 255, (6, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert read_canonical(tmp_path / "rgb.tif").shape == (6, 7, 3)


def test_ome_zarr_group(tmp_path):
    import zarr

    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    arr = group.create_array("0", shape=(2, 10, 12), dtype="uint16")
    arr[...] = np.arange(240, dtype=np.uint16).reshape(2, 10, 12)
    group.attrs["multiscales"] = [{"axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}], "datasets": [{"path": "0"}]}]
    lazy, axes = open_image(tmp_path / "img.ome.zarr")
    assert axes == "CYX" and lazy.shape == (2, 10, 12)
    assert read_canonical(tmp_path / "img.ome.zarr").shape == (10, 12, 2)


def test_file_stem_and_pairs(tmp_path):
    assert file_stem("x/cell.ome.tif") == "cell"
    (tmp_path / "im").mkdir()
    (tmp_path / "lab").mkdir()
    for name in ("a", "b"):
        write_image(tmp_path / "im" / f"{name}.tif", np.zeros((4, 4), np.uint8))
        write_image(tmp_path / "lab" / f"{name}.png", np.zeros((4, 4), np.uint8))
    pairs = find_pairs(tmp_path / "im", tmp_path / "lab")
    assert [(i.name, lab.name) for i, lab in pairs] == [("a.tif", "a.png"), ("b.tif", "b.png")]
    write_image(tmp_path / "im" / "c.tif", np.zeros((4, 4), np.uint8))
    write_image(tmp_path / "lab" / "d.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(PixlearnError, match=r"without annotation.*c.*without image.*d"):
        find_pairs(tmp_path / "im", tmp_path / "lab")


def test_list_images_folder_glob_and_missing(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / f"{name}.tif", np.zeros((4, 4), np.uint8))
    assert [p.name for p in list_images([tmp_path])] == ["a.tif", "b.tif"]
    assert [p.name for p in list_images([str(tmp_path / "b*.tif")])] == ["b.tif"]
    with pytest.raises(PixlearnError, match="no such file"):
        list_images([tmp_path / "zzz.tif"])


def test_corrupt_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(PixlearnError, match="bad.tif: cannot read"):
        read_image(bad)
    with pytest.raises(PixlearnError, match="nope.tif: no such file"):
        read_image(tmp_path / "nope.tif")


def test_nan_pixels_refused(tmp_path):
    image = np.ones((5, 5), np.float32)
    image[2, 2] = np.nan
    write_image(tmp_path / "n.tif", image)
    with pytest.raises(PixlearnError, match="n.tif: contains 1 NaN"):
        read_canonical(tmp_path / "n.tif")


def test_read_labels_rejects_fractions_and_channels(tmp_path):
    write_image(tmp_path / "f.tif", np.full((4, 4), 0.5, np.float32))
    with pytest.raises(PixlearnError, match="non-integer"):
        read_labels(tmp_path / "f.tif")
    write_image(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(PixlearnError, match="3 channels"):
        read_labels(tmp_path / "rgb.png")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.tif") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_load_pairs_checks_shapes(tmp_path):
    (tmp_path / "im").mkdir()
    (tmp_path / "lab").mkdir()
    write_image(tmp_path / "im" / "a.tif", np.zeros((6, 6), np.uint8))
    write_image(tmp_path / "lab" / "a.tif", np.zeros((6, 5), np.uint8))
    with pytest.raises(PixlearnError, match=r"a.tif: annotation shape \(6, 5\) differs"):
        load_pairs(tmp_path / "im", tmp_path / "lab")


@pytest.mark.parametrize("name", ["isbi2012_em", "dsb2018_nuclei", "drosophila_vnc_sstem", "w2s_denoising"])
def test_shared_datasets_load_as_they_are(name):
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / name
    if not root.exists():
        pytest.skip("shared data not present")
    split = json.loads((root / "split.json").read_text())
    kind = {"dsb2018_nuclei": "instances", "w2s_denoising": "restore"}.get(name, "dense")
    pairs = load_pairs(root / "images", root / "labels", label_kind=kind, names=split["test"][:3])
    assert len(pairs) == min(3, len(split["test"]))
    for pair in pairs:
        assert pair.image.ndim in (3, 4) and pair.image.shape[-1] in (1, 3)
        assert pair.labels.shape[: pair.image.ndim - 1] == pair.image.shape[:-1]
