"""OME-Zarr (NGFF 0.4) and OME-TIFF outputs of ``predict_many``, and object files for QuPath and tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from pixlearn.data.images import open_image, read_image
from pixlearn.data.ngff import check_ngff
from pixlearn.data.ome import create_ome_zarr, finish_ome_zarr, physical_sizes, pyramid_shapes
from pixlearn.errors import PixlearnError
from pixlearn.predict import PredictOptions, predict_many, read_manifest
from pixlearn.predict.tiling import TileConfig

from .test_predict import FilterModel, _whole


@pytest.fixture
def big_input(tmp_path):
    """A 600 x 520 OME-TIFF of bright squares with a pixel size of 0.25 um."""
    image = np.full((600, 520), 200, np.uint16)
    for r, c in ((40, 40), (300, 100), (500, 400), (100, 450)):
        image[r:r + 40, c:c + 50] = 3000
    image = image + np.random.default_rng(0).integers(0, 50, image.shape).astype(np.uint16)
    path = tmp_path / "raw" / "cells.ome.tif"
    path.parent.mkdir()
    tifffile.imwrite(path, image, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25,
                                                      "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    return path, image


def test_ome_zarr_output_round_trip_and_ngff_rules(tmp_path, big_input):
    import zarr

    path, image = big_input
    out = tmp_path / "out"
    predict_many(FilterModel(), [path], out, PredictOptions(output_format="ome-zarr", probabilities=True,
                                                          tile=TileConfig(tile_shape=(128, 128))))
    target = out / "cells.ome.zarr"
    assert check_ngff(target) == [] and check_ngff(out / "probabilities" / "cells.ome.zarr") == []
    labels, axes = open_image(target)  # level 0, through the reader every command uses
    expected = np.argmax(_whole(FilterModel(), image[..., None].astype(np.float32)), -1)
    assert axes == "YX" and labels.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(labels[...]), expected)
    root = zarr.open_group(str(target), mode="r")
    meta = root.attrs["multiscales"][0]
    assert meta["version"] == "0.4" and [a["name"] for a in meta["axes"]] == ["y", "x"]
    assert meta["axes"][0] == {"name": "y", "type": "space", "unit": "micrometer"}
    assert [d["path"] for d in meta["datasets"]] == ["0", "1", "2"]  # 600 -> 300 -> 150 (< 256: stop)
    assert [d["coordinateTransformations"][0]["scale"] for d in meta["datasets"]] == [[0.25, 0.25], [0.5, 0.5], [1.0, 1.0]]
    assert root["1"].shape == (300, 260) and root["2"].shape == (150, 130)
    np.testing.assert_array_equal(root["1"][...], expected[::2, ::2])  # nearest for labels
    assert (target / "0" / ".zarray").exists() and json.loads((target / "0" / ".zarray").read_text())["zarr_format"] == 2
    assert root["labels"].attrs["labels"] == ["classes"]
    label_meta = root["labels/classes"].attrs
    assert [c["label-value"] for c in label_meta["image-label"]["colors"]] == [0, 1]
    np.testing.assert_array_equal(root["labels/classes/2"][...], expected[::4, ::4])
    # probabilities: channels first (NGFF), mean pyramid, read back in the canonical layout
    probs, prob_axes = open_image(out / "probabilities" / "cells.ome.zarr")
    assert prob_axes == "CYX" and probs.shape == (2, 600, 520)
    prob_root = zarr.open_group(str(out / "probabilities" / "cells.ome.zarr"), mode="r")
    assert [a["type"] for a in prob_root.attrs["multiscales"][0]["axes"]] == ["channel", "space", "space"]
    level0 = np.asarray(probs[...])
    np.testing.assert_allclose(prob_root["1"][:, :2, :2], level0[:, :4, :4].reshape(2, 2, 2, 2, 2).mean(axis=(2, 4)),
                               rtol=1e-5)
    assert physical_sizes(target) == ({"Y": 0.25, "X": 0.25}, "micrometer")
    # finished: a rerun skips it
    predict_many(FilterModel(), [path], out, PredictOptions(output_format="ome-zarr", probabilities=True))
    assert len(read_manifest(out)) == 1


def test_ome_zarr_3d_channels_and_rules_caught(tmp_path):
    image = np.random.default_rng(1).random((3, 40, 30, 2)).astype(np.float32)
    level0 = create_ome_zarr(tmp_path / "r.ome.zarr", image.shape, np.float32, 3)
    level0[0:2, 0:40, 0:30] = image[0:2]
    level0[2:3, 0:40, 0:30] = image[2:3]
    finish_ome_zarr(tmp_path / "r.ome.zarr", 3, {"Z": 2.0}, None, min_side=8)
    assert check_ngff(tmp_path / "r.ome.zarr") == []
    array, axes = open_image(tmp_path / "r.ome.zarr")
    assert axes == "CZYX" and array.shape == (2, 3, 40, 30)
    np.testing.assert_array_equal(np.moveaxis(np.asarray(array[...]), 0, -1), image)
    assert pyramid_shapes((2, 3, 40, 30), min_side=8) == [(2, 3, 40, 30), (2, 3, 20, 15), (2, 3, 10, 8), (2, 3, 5, 4)]
    # the checker catches broken metadata
    import zarr

    group = zarr.open_group(str(tmp_path / "r.ome.zarr"), mode="r+", zarr_format=2)
    meta = group.attrs["multiscales"]
    meta[0]["version"] = "0.3"
    meta[0]["axes"] = meta[0]["axes"][1:] + meta[0]["axes"][:1]  # channel last: not allowed
    meta[0]["datasets"][1]["coordinateTransformations"][0]["scale"] = [1.0, 1.0]
    group.attrs["multiscales"] = meta
    problems = check_ngff(tmp_path / "r.ome.zarr")
    assert any("version" in p for p in problems) and any("axis types" in p for p in problems)
    assert any("scale" in p for p in problems)


def test_ome_zarr_3d_labels_pyramid_block_by_block(tmp_path, monkeypatch):
    import zarr

    from pixlearn.data import ome

    monkeypatch.setattr(ome, "CHUNKS", (8, 4))  # many blocks: 4 planes per block
    labels = np.random.default_rng(2).integers(0, 5, (10, 40, 30)).astype(np.uint16)
    level0 = create_ome_zarr(tmp_path / "l.ome.zarr", labels.shape, np.uint16, 3)
    level0[...] = labels
    finish_ome_zarr(tmp_path / "l.ome.zarr", 3, {"Z": 3.0, "Y": 0.5, "X": 0.5}, "micrometer", labels="instances",
                    min_side=8)
    assert check_ngff(tmp_path / "l.ome.zarr") == []
    root = zarr.open_group(str(tmp_path / "l.ome.zarr"), mode="r")
    for level in range(1, 4):
        step = 2**level
        np.testing.assert_array_equal(root[str(level)][...], labels[:, ::step, ::step])
        np.testing.assert_array_equal(root[f"labels/instances/{level}"][...], labels[:, ::step, ::step])
    scales = [d["coordinateTransformations"][0]["scale"] for d in root.attrs["multiscales"][0]["datasets"]]
    assert scales[:2] == [[3.0, 0.5, 0.5], [3.0, 1.0, 1.0]]
    assert [c["label-value"] for c in root["labels/instances"].attrs["image-label"]["colors"]] == [0, 1, 2, 3, 4]


def test_ome_tiff_output_axes_and_sizes(tmp_path, big_input):
    path, image = big_input
    out = tmp_path / "out"
    predict_many(FilterModel(task="restore", n_outputs=2), [path], out, PredictOptions(output_format="ome-tif"))
    with tifffile.TiffFile(out / "cells.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX" and tif.series[0].shape == (2, 600, 520)
    assert physical_sizes(out / "cells.ome.tif") == ({"Y": 0.25, "X": 0.25}, "micrometer")
    restored, axes = read_image(out / "cells.ome.tif")
    assert axes == "CYX" and restored.dtype == np.float32
    # 3D multichannel: ImageJ hyperstack order ZCYX, Z spacing kept from an ImageJ input
    stack = tmp_path / "raw3" / "stack.tif"
    stack.parent.mkdir()
    volume = (rng_volume := np.random.default_rng(3).integers(0, 1000, (4, 20, 24))).astype(np.uint16)
    tifffile.imwrite(stack, volume, imagej=True, resolution=(2.0, 2.0), metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"})
    assert rng_volume.shape == (4, 20, 24)
    model = FilterModel(task="restore", ndim=3, halo=(1, 2, 2), n_outputs=2)
    predict_many(model, [stack], tmp_path / "out3", PredictOptions(output_format="ome-tif"))
    with tifffile.TiffFile(tmp_path / "out3" / "stack.ome.tif") as tif:
        assert tif.series[0].axes == "ZCYX" and tif.series[0].shape == (4, 2, 20, 24)
    assert physical_sizes(tmp_path / "out3" / "stack.ome.tif") == ({"Z": 1.5, "Y": 0.5, "X": 0.5}, "micrometer")


def test_tif_and_zarr_outputs_unchanged(tmp_path, big_input):
    path, _ = big_input
    predict_many(FilterModel(), [path], tmp_path / "a", PredictOptions(output_format="zarr"))
    predict_many(FilterModel(), [path], tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["cells.zarr", "manifest.jsonl"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["cells.tif", "manifest.jsonl"]
    a, _ = read_image(tmp_path / "a" / "cells.zarr")
    b, _ = read_image(tmp_path / "b" / "cells.tif")
    np.testing.assert_array_equal(a, b)


def _squares_input(tmp_path):
    image = np.full((64, 70), 100, np.uint16)
    boxes = [(5, 5, 10, 12), (30, 40, 20, 8), (50, 2, 6, 6)]  # row, column, height, width
    for r, c, h, w in boxes:
        image[r:r + h, c:c + w] = 2000
    path = tmp_path / "raw" / "sq.tif"
    path.parent.mkdir(exist_ok=True)
    tifffile.imwrite(path, image)
    return path, boxes


@pytest.mark.parametrize("fmt", ["tif", "ome-zarr"])
def test_objects_geojson_and_csv(tmp_path, fmt):
    path, boxes = _squares_input(tmp_path)
    out = tmp_path / "out"
    model = FilterModel(task="instances")
    predict_many(model, [path], out, PredictOptions(output_format=fmt, objects=("geojson", "csv"),
                                                   tile=TileConfig(tile_shape=(32, 32))))
    collection = json.loads((out / "objects" / "sq.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == len(boxes)
    with open(out / "objects" / "sq.csv") as fh:
        rows = {int(r["label"]): r for r in csv.DictReader(fh)}
    assert len(rows) == len(boxes)
    assert {"area", "centroid-0", "bbox-3", "eccentricity", "solidity", "intensity_mean-0"} <= set(rows[1])
    labels, _ = read_image(out / ("sq.tif" if fmt == "tif" else "sq.ome.zarr"))
    for feature in collection["features"]:
        props = feature["properties"]
        assert props["objectType"] == "detection" and feature["geometry"]["type"] == "Polygon"
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        assert (ring[0] == ring[-1]).all()
        row = rows[props["label"]]
        x, y = ring.T  # the polygon follows the pixel edges of the object: same area and box
        assert 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) == float(row["area"])
        assert [y.min(), x.min(), y.max(), x.max()] == [float(row[f"bbox-{i}"]) for i in range(4)]
        assert float(row["area"]) == (labels == props["label"]).sum() == props["measurements"]["area"]
    areas = sorted(float(r["area"]) for r in rows.values())
    truth = sorted(h * w for _, _, h, w in boxes)  # the model smooths: corners come out rounded
    assert all(abs(a - t) <= 0.4 * t for a, t in zip(areas, truth)), (areas, truth)
    assert read_manifest(out)[0]["objects"] == [str(out / "objects" / "sq.geojson"), str(out / "objects" / "sq.csv")]


def test_objects_refused_for_non_instance_models_and_foreign_files(tmp_path):
    path, _ = _squares_input(tmp_path)
    with pytest.raises(PixlearnError, match="instance"):
        predict_many(FilterModel(), [path], tmp_path / "out", PredictOptions(objects=("csv",)))
    with pytest.raises(PixlearnError, match="objects"):
        PredictOptions(objects=("shp",))
    (tmp_path / "out2" / "objects").mkdir(parents=True)
    (tmp_path / "out2" / "objects" / "sq.csv").write_text("mine")
    with pytest.raises(PixlearnError, match="not written by pixlearn"):
        predict_many(FilterModel(task="instances"), [path], tmp_path / "out2", PredictOptions(objects=("csv",)))
    assert (tmp_path / "out2" / "objects" / "sq.csv").read_text() == "mine"


def test_objects_and_ome_zarr_on_dask_blocks_equal_single_process(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    import warnings

    from pixlearn.data import ome
    from pixlearn.predict import _machinery as machinery_module
    from pixlearn.predict import distributed as distributed_module

    path, _ = _squares_input(tmp_path)
    model = FilterModel(task="instances")
    options = PredictOptions(output_format="ome-zarr", objects=("csv", "geojson"), tile=TileConfig(tile_shape=(16, 16)))
    predict_many(model, [path], tmp_path / "single", options)
    monkeypatch.setitem(distributed_module.DASK_BLOCK_PIXELS, 2, 256)
    monkeypatch.setattr(ome, "CHUNKS", (16, 16))
    monkeypatch.setattr(machinery_module, "OUTPUT_CHUNKS", (32, 16))  # scratch outputs: blocks of 32 x 32
    blocks = []
    real_split = distributed_module._block_regions
    monkeypatch.setattr(distributed_module, "_block_regions", lambda *a: blocks.extend(real_split(*a)) or real_split(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster:
            predict_many(model, [path], tmp_path / "dask", options, dask_address=cluster.scheduler_address)
    assert check_ngff(tmp_path / "dask" / "sq.ome.zarr") == [] and len(blocks) == 2 * 3
    for name in ("objects/sq.csv", "objects/sq.geojson"):
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "single" / name).read_text()


def test_ome_zarr_output_opens_with_the_ome_zarr_reader_and_validates(tmp_path, big_input):
    """The community's own tools read what we write: ome-zarr-py's reader finds the pyramid and the
    label image, and ome-zarr-models (the NGFF 0.4 specification as pydantic models) validates it."""
    reader = pytest.importorskip("ome_zarr.reader", reason="needs ome-zarr (the exchange extra)")
    ome_io = pytest.importorskip("ome_zarr.io")
    models = pytest.importorskip("ome_zarr_models.v04")
    import zarr

    path, image = big_input
    out = tmp_path / "out"
    predict_many(FilterModel(), [path], out, PredictOptions(output_format="ome-zarr"))
    target = out / "cells.ome.zarr"
    nodes = list(reader.Reader(ome_io.parse_url(str(target)))())
    image_node = nodes[0]
    assert [tuple(level.shape) for level in image_node.data] == [(600, 520), (300, 260), (150, 130)]
    assert image_node.metadata["axes"][0]["name"] == "y"
    expected = np.argmax(_whole(FilterModel(), image[..., None].astype(np.float32)), -1)
    np.testing.assert_array_equal(np.asarray(image_node.data[0]), expected)
    assert any(node.zarr.path.rstrip("/").endswith("labels/classes") for node in nodes)  # the label image is found
    group = zarr.open_group(str(target), mode="r")
    models.Image.from_zarr(group)  # raises on any NGFF 0.4 violation
    models.ImageLabel.from_zarr(zarr.open_group(str(target / "labels" / "classes"), mode="r"))
