from __future__ import annotations

import dataclasses
import errno
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from pixlearn.data.images import create_zarr, write_image
from pixlearn.data.normalize import (
    NormalizeConfig,
    apply_normalization,
    compute_normalization,
)
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel, crop_outputs
from pixlearn.predict import (
    CanonicalView,
    PredictOptions,
    apply_model,
    label_tiled,
    predict_many,
    predict_tiled,
    read_manifest,
    with_tta,
)
from pixlearn.predict import _machinery as machinery_module
from pixlearn.predict import distributed as distributed_module
from pixlearn.predict.tiling import TileConfig


def _mean_filter(halo: int):
    """A predictor with a known halo: a (2*halo+1)-wide mean filter per channel."""
    def predict(block):
        size = (2 * halo + 1,) * (block.ndim - 1) + (1,)
        return ndimage.uniform_filter(block, size=size, mode="reflect")
    return predict


def _pool_upsample(block):
    """Output depends on 2-pixel cells aligned to the block origin, like a U-Net's pooling:
    tiled == whole only when tiles start at even positions."""
    pad = [(0, s % 2) for s in block.shape[:-1]] + [(0, 0)]
    padded = np.pad(block, pad, mode="edge")
    pooled = padded
    for axis in range(block.ndim - 1):
        shape = list(pooled.shape)
        pooled = pooled.reshape(shape[:axis] + [shape[axis] // 2, 2] + shape[axis + 1:]).max(axis=axis + 1)
    up = pooled
    for axis in range(block.ndim - 1):
        up = np.repeat(up, 2, axis=axis)
    up = up[tuple(slice(0, s) for s in block.shape[:-1])]
    return ndimage.uniform_filter(up + block, size=(3,) * (block.ndim - 1) + (1,), mode="reflect")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ------------------------------------------------------------------------------------ engine


@pytest.mark.parametrize("shape", [(16, 15, 7), (9, 11, 13, 2)])
@pytest.mark.parametrize("mode", ["exact", "blended"])
@pytest.mark.parametrize("tile", [4, 7, 64])
def test_add_one_tiled_equals_untiled(rng, shape, mode, tile):
    image = rng.normal(size=shape).astype(np.float32)
    cfg = TileConfig(tile_shape=(tile,) * (len(shape) - 1), overlap=2, mode=mode)
    result = predict_tiled(image, lambda t: t + 1, cfg)
    assert result.shape == shape and result.dtype == np.float32
    if mode == "exact":
        np.testing.assert_array_equal(result, image + 1)
    else:  # a weighted average of equal values: float rounding only
        np.testing.assert_allclose(result, image + 1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, tiles", [((37, 41, 2), [(9, 9), (12, 20), (37, 41)]),
                                          ((9, 23, 19, 1), [(7, 8, 9), (9, 12, 10)])])
@pytest.mark.parametrize("blend", ["gaussian", "cosine", "constant"])
def test_halo_filter_tiled_equals_untiled(rng, shape, tiles, blend):
    image = rng.normal(size=shape).astype(np.float32)
    fn = _mean_filter(2)
    whole = fn(image)
    for tile in tiles:
        exact = predict_tiled(image, fn, TileConfig(tile_shape=tile, mode="exact"), halo=2)
        np.testing.assert_array_equal(exact, whole)
        blended = predict_tiled(image, fn, TileConfig(tile_shape=tile, mode="blended", blend=blend), halo=2)
        np.testing.assert_allclose(blended, whole, rtol=0, atol=1e-5)


def test_blended_without_halo_margins_differs_and_warns(rng):
    image = rng.normal(size=(40, 40, 1)).astype(np.float32)
    fn = _mean_filter(3)
    cfg = TileConfig(tile_shape=(16, 16), overlap=2, mode="blended")
    with pytest.warns(UserWarning, match="twice the halo"):
        result = predict_tiled(image, fn, cfg, halo=3)
    assert np.abs(result - fn(image)).max() > 1e-3


@pytest.mark.parametrize("mode", ["exact", "blended"])
def test_divisor_aligns_tiles_for_pooling_models(rng, mode):
    image = rng.normal(size=(45, 38, 1)).astype(np.float32)
    whole = _pool_upsample(image)
    cfg = TileConfig(tile_shape=(16, 16), mode=mode, overlap=8)
    aligned = predict_tiled(image, _pool_upsample, cfg, halo=3, divisor=2)
    np.testing.assert_allclose(aligned, whole, rtol=0, atol=1e-5)
    unaligned = predict_tiled(image, _pool_upsample, TileConfig(tile_shape=(15, 15), mode=mode, overlap=7), halo=3)
    assert np.abs(unaligned - whole).max() > 1e-3


def test_batched_calls_stack_equal_tiles(rng):
    image = rng.normal(size=(30, 30, 2)).astype(np.float32)
    calls = []

    def batch_fn(stack):
        calls.append(stack.shape)
        return stack[..., :1] * 2

    cfg = TileConfig(tile_shape=(10, 10), overlap=4, mode="blended", batch_size=3)
    result = predict_tiled(image, batch_fn, cfg, batched=True)
    np.testing.assert_allclose(result, image[..., :1] * 2, rtol=1e-6)
    assert max(c[0] for c in calls) == 3 and len(calls) < 16 and all(len(c) == 4 for c in calls)


def test_wrong_output_shape_is_reported(rng):
    image = rng.normal(size=(20, 20, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="predict_fn returned shape"):
        predict_tiled(image, lambda t: t[1:], TileConfig(tile_shape=(8, 8)))
    with pytest.raises(ValueError, match="no core"):
        predict_tiled(image, lambda t: t, TileConfig(tile_shape=(8, 8)), halo=4)


class _CountingArray:
    """A lazy array that records every read and refuses to be read whole."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, key):
        block = self.array[key]
        if block.size == self.array.size:
            raise AssertionError("the whole image was read")
        self.reads.append(block.shape)
        return block


@pytest.mark.parametrize("mode", ["exact", "blended"])
def test_out_of_core_zarr_equals_in_memory(tmp_path, rng, mode):
    image = (rng.random((70, 61, 2)) * 4000).astype(np.uint16)
    source = create_zarr(tmp_path / "in.zarr", image.shape, image.dtype, chunks=(16, 16, 2))
    source[...] = image
    lazy = _CountingArray(source)
    fn = _mean_filter(1)
    cfg = TileConfig(tile_shape=(24, 24), mode=mode)
    in_memory = predict_tiled(image, fn, cfg, halo=1)
    out = create_zarr(tmp_path / "out.zarr", (70, 61, 2), np.float32, chunks=(16, 16, 2))
    predict_tiled(lazy, fn, cfg, halo=1, out=out)
    np.testing.assert_array_equal(np.asarray(out[...]), in_memory)
    assert len(lazy.reads) > 4


class _RecordingOut:
    """An output array that notes how many tiles had been predicted at each write."""

    def __init__(self, shape, calls):
        self.array, self.shape, self.calls, self.writes = np.zeros(shape, np.float32), shape, calls, []

    def __setitem__(self, key, value):
        self.writes.append(len(self.calls))
        self.array[key] = value


@pytest.mark.parametrize("shape", [(64, 60, 1), (20, 40, 36, 1)])
def test_blended_writes_finished_blocks_while_streaming(rng, shape):
    image = rng.normal(size=shape).astype(np.float32)
    calls = []

    def fn(block):
        calls.append(block.shape)
        return block

    out = _RecordingOut(shape, calls)
    predict_tiled(image, fn, TileConfig(tile_shape=(8,) * (len(shape) - 1), overlap=2, mode="blended"), out=out)
    np.testing.assert_allclose(out.array, image, rtol=1e-6, atol=1e-6)
    assert len(out.writes) == len(calls)  # one finished block per tile
    assert out.writes[0] == 1 and out.writes[len(calls) // 2] <= len(calls) // 2 + 1  # written as it goes


@pytest.mark.parametrize("shape,tile", [((37, 50, 1), (16, 16)), ((21, 30, 26, 1), (8, 12, 12))])
def test_blended_stream_equals_reference_sums_bitwise(rng, shape, tile):
    # the streaming band recomputes each cell's weight sum at the end: the values must equal
    # plain full-size sums over all tiles in the same order (margins of halo 1, Gaussian weights)
    from pixlearn.predict.blended import make_blend_plan, run_blended
    from pixlearn.predict.tiling import blend_weights

    image = rng.normal(size=shape).astype(np.float32)
    fn = lambda block: np.concatenate([np.tanh(block), block**2], axis=-1)
    spatial = shape[:-1]
    plan = make_blend_plan(spatial, tile, (4,) * len(tile), (1,) * len(tile), (1,) * len(tile), TileConfig())
    out = np.zeros(spatial + (2,), np.float32)

    def write(region, block):
        out[region] = block

    run_blended(image, plan, fn, write, 3, False, None)
    acc, wsum = np.zeros_like(out), np.zeros(spatial, np.float32)
    for idx in plan.tiles:
        region = plan.region(idx)
        margins = [(m if i > 0 else 0, m if i < len(plan.intervals[d]) - 1 else 0)
                   for d, (i, m) in enumerate(zip(idx, plan.margins))]
        w = blend_weights([r.stop - r.start for r in region], "gaussian", margins=margins)
        acc[region] += fn(image[region]) * w[..., None]
        wsum[region] += w
    np.testing.assert_array_equal(out, acc / wsum[..., None])


def test_apply_model_default_tiles(blobs_2d):
    image = blobs_2d[0][..., None]
    model = FilterModel()
    np.testing.assert_array_equal(apply_model(model, image), np.argmax(_whole(model, image), -1))


def test_finalize_writes_class_maps(rng):
    image = rng.random((33, 20, 1)).astype(np.float32)

    def two_class(block):
        return np.concatenate([1 - block, block], axis=-1)

    out = np.zeros((33, 20), np.uint8)
    predict_tiled(image, two_class, TileConfig(tile_shape=(8, 8), mode="blended"), out=out,
                  finalize=lambda p: np.argmax(p, -1).astype(np.uint8))
    np.testing.assert_array_equal(out, (image[..., 0] > 0.5).astype(np.uint8))


def test_canonical_view_reads_lazily():
    stored = np.arange(2 * 5 * 6 * 7).reshape(2, 5, 6, 7)  # CZYX
    view = CanonicalView(stored, "CZYX")
    assert view.shape == (5, 6, 7, 2)
    np.testing.assert_array_equal(view[1:3, :, 2:4], np.moveaxis(stored, 0, -1)[1:3, :, 2:4])
    np.testing.assert_array_equal(view[..., 1:], np.moveaxis(stored, 0, -1)[..., 1:])
    grey = CanonicalView(np.ones((1, 4, 3)), "TYX")
    assert grey.shape == (4, 3, 1) and grey[:2].shape == (2, 3, 1)


def test_tta_of_symmetric_filter_is_the_filter(rng):
    image = rng.normal(size=(12, 12, 1)).astype(np.float32)
    fn = _mean_filter(1)
    np.testing.assert_allclose(with_tta(fn, 2)(image), fn(image), rtol=1e-5, atol=1e-6)
    shifted = lambda t: np.roll(t, 1, axis=0)
    assert not np.allclose(with_tta(shifted, 2)(image), shifted(image))
    batch = np.stack([image, image[::-1]])
    per_item = lambda stack: np.stack([fn(x) for x in stack])
    np.testing.assert_allclose(with_tta(per_item, 2, batched=True)(batch)[1], fn(image[::-1]), rtol=1e-5, atol=1e-6)
    volume = rng.normal(size=(5, 6, 7, 1)).astype(np.float32)
    np.testing.assert_allclose(with_tta(fn, 3)(volume), fn(volume), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------ models


@dataclasses.dataclass
class FilterModel:
    """An analytic PixelModel: smoothed intensity -> (background, foreground) probabilities."""

    task: str = "semantic"
    kind: str = "classical"
    ndim: int = 2
    n_channels: int = 1
    n_outputs: int = 2
    halo: tuple[int, ...] = (2, 2)
    normalization: NormalizeConfig = dataclasses.field(default_factory=NormalizeConfig)
    tile_mode: str = "exact"
    size_divisor: int = 1
    batches_tiles: bool = False
    bytes_per_pixel: float = 64.0

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        smooth = _mean_filter(2)(image).mean(axis=-1, keepdims=True)
        if self.task == "restore":
            return np.repeat(smooth, self.n_outputs, axis=-1)
        foreground = 1.0 / (1.0 + np.exp(-12.0 * (smooth - 0.5)))
        return np.concatenate([1 - foreground, foreground], axis=-1).astype(np.float32)

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        return np.stack([self.predict_raw(block) for block in blocks])

    def memory_budget_bytes(self) -> float | None:
        return None

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        return crop_outputs(self.predict_batch(blocks), inner, labels)

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        return ndimage.label(np.argmax(outputs, -1) > 0)[0]

    def to_metadata(self) -> dict[str, Any]:
        return {"task": self.task}


def _whole(model, image):
    low, high = compute_normalization(image, model.normalization)
    return model.predict_raw(apply_normalization(image, low, high))


def _same_partition(a, b):
    """Two label images describe the same objects (ids may differ)."""
    assert ((a > 0) == (b > 0)).all()
    pairs = {(int(x), int(y)) for x, y in zip(a[a > 0], b[b > 0])}
    assert len(pairs) == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_filter_model_satisfies_protocol():
    assert isinstance(FilterModel(), PixelModel)


@pytest.mark.parametrize("task", ["semantic", "restore"])
def test_apply_model_equals_whole_image(rng, blobs_2d, task):
    image = (blobs_2d[0][..., None] * 1000).astype(np.float32)
    model = FilterModel(task=task, n_outputs=2 if task == "semantic" else 1)
    result, probs = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(16, 16)), return_probabilities=True)
    whole = _whole(model, image)
    np.testing.assert_array_equal(probs, whole)
    if task == "semantic":
        assert result.dtype == np.uint8
        np.testing.assert_array_equal(result, np.argmax(whole, -1))
    else:
        low, high = compute_normalization(image, model.normalization)
        np.testing.assert_allclose(result, whole * (high - low) + low, rtol=1e-5)
        assert abs(float(result.mean()) - float(image.mean())) < 0.05 * float(image.std())


def test_apply_model_blended_tile_mode_blends(blobs_3d):
    image = blobs_3d[0][..., None]
    model = FilterModel(tile_mode="blended", ndim=3, halo=(2, 2, 2))
    probs = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(8, 12, 12), batch_size=2),
                        return_probabilities=True)[1]
    np.testing.assert_allclose(probs, _whole(model, image), rtol=0, atol=1e-5)


def test_apply_model_to_zarr_path(tmp_path, blobs_2d):
    image = blobs_2d[0][..., None]
    model = FilterModel()
    labels, probs = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(16, 16)),
                                output=tmp_path / "out.zarr", return_probabilities=True)
    assert labels.attrs["incomplete"] is False
    np.testing.assert_array_equal(labels[...], np.argmax(_whole(model, image), -1))
    np.testing.assert_array_equal(probs[...], _whole(model, image))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "out_probabilities.zarr"]


def test_apply_model_tta_exact_for_classical(blobs_2d):
    image = blobs_2d[0][..., None]
    model = FilterModel()
    _, probs = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(16, 16)), tta=True,
                           return_probabilities=True)
    low, high = compute_normalization(image, model.normalization)
    expected = with_tta(model.predict_raw, 2)(apply_normalization(image, low, high))
    np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-7)


def test_apply_model_rejects_wrong_images(rng):
    model = FilterModel()
    with pytest.raises(PixlearnError, match="channel"):
        apply_model(model, rng.random((20, 20, 3)))
    with pytest.raises(PixlearnError, match="3D"):  # planes 3 pixels wide: not a stack of planes
        apply_model(model, rng.random((4, 20, 3, 1)))
    stack = rng.random((4, 20, 20, 1))  # a stack: plane by plane (normalised as one image, hence not exactly)
    planes = np.stack([apply_model(model, p) for p in stack])
    assert apply_model(model, stack).shape == planes.shape and (apply_model(model, stack) == planes).mean() > 0.9


# ------------------------------------------------------------------------------------ instances


def _discs_on_borders(shape, centres, radius):
    grid = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for i, c in enumerate(centres, 1):
        labels[sum((g - x) ** 2 for g, x in zip(grid, c)) <= radius**2] = i
    return labels


def test_label_tiled_3d_ball_on_corner():
    truth = _discs_on_borders((24, 30, 30), [(12, 15, 15), (4, 4, 26)], 4)
    fn = lambda o: ndimage.label(o[..., 0] > 0.5)[0]
    labels = label_tiled((truth > 0).astype(np.float32)[..., None], fn, core_shape=(12, 15, 15), margin=3)
    _same_partition(labels, truth)


@pytest.mark.parametrize("core", [10, 20])
def test_label_tiled_objects_on_borders_one_label(core):
    # discs centred on core borders (multiples of `core`), one on a corner, one long bar
    truth = _discs_on_borders((60, 50), [(20, 20), (10, 31), (40, 40), (30, 10)], 4)
    truth[52:55, 2:48] = 5
    outputs = (truth > 0).astype(np.float32)[..., None]
    fn = lambda o: ndimage.label(o[..., 0] > 0.5)[0]
    labels = label_tiled(outputs, fn, core_shape=core, margin=4)
    _same_partition(labels, truth)
    assert labels.dtype == np.uint32 and sorted(np.unique(labels)) == list(range(6))


def test_label_tiled_watershed_touching_objects_across_borders():
    from pixlearn.nets.targets import instance_targets
    from pixlearn.postprocess.instances import instances_from_outputs

    truth = _discs_on_borders((48, 48), [(16, 13), (16, 21), (30, 32), (34, 40)], 5)
    outputs = instance_targets(truth).astype(np.float32)
    whole = instances_from_outputs(outputs)
    out = create_zarr_like = np.zeros(truth.shape, np.uint32)
    tiled = label_tiled(outputs, instances_from_outputs, create_zarr_like, core_shape=16, margin=12)
    assert tiled is out
    _same_partition(tiled, whole)
    assert len(np.unique(tiled)) - 1 == 4


def test_apply_model_instances_across_tiles(tmp_path):
    truth = _discs_on_borders((100, 90), [(64, 30), (20, 64), (64, 64)], 6)
    image = (truth > 0).astype(np.float32)[..., None] * 0.8 + 0.1
    model = FilterModel(task="instances")
    labels = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(40, 40)), output=tmp_path / "l.zarr")
    whole = ndimage.label(np.argmax(_whole(model, image), -1) > 0)[0]
    _same_partition(np.asarray(labels[...]), whole)
    assert int(np.asarray(labels[...]).max()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.zarr"]  # scratch outputs removed


# ------------------------------------------------------------------------------------ batches


@pytest.fixture
def folder(tmp_path, blobs_2d):
    raw = tmp_path / "raw"
    image = (blobs_2d[0] * 1000).astype(np.uint16)
    for i in range(3):
        write_image(raw / f"img{i}.tif", np.roll(image, 5 * i, axis=1))
    return raw


def test_predict_many_manifest_skip_and_resume(tmp_path, folder):
    model = FilterModel()
    out = tmp_path / "out"
    inputs = sorted(folder.iterdir())
    manifest = predict_many(model, inputs[:2], out, PredictOptions(probabilities=True), model_name="m1")
    records = read_manifest(out)
    assert manifest == out / "manifest.jsonl" and [r["model"] for r in records] == ["m1", "m1"]
    assert set(records[0]) >= {"input", "output", "model", "seconds"}
    first = (out / "img0.tif").stat().st_mtime_ns
    # an interrupted run leaves a temporary output behind; a rerun removes it and does the rest
    (out / ".img2.tif.1234abcd.partial").write_bytes(b"half")
    (out / "probabilities" / ".img2.tif.5678abcd.partial").write_bytes(b"half")
    predict_many(model, inputs, out, model_name="m1")
    assert (out / "img0.tif").stat().st_mtime_ns == first  # finished: skipped
    assert [r["input"] for r in read_manifest(out)] == [str(p) for p in inputs]
    assert sorted(p.name for p in out.iterdir()) == ["img0.tif", "img1.tif", "img2.tif", "manifest.jsonl", "probabilities"]
    assert sorted(p.name for p in (out / "probabilities").iterdir()) == ["img0.tif", "img1.tif"]
    from pixlearn.data.images import read_image

    labels, _ = read_image(out / "img1.tif")
    image, _ = read_image(inputs[1])
    np.testing.assert_array_equal(labels, np.argmax(_whole(model, image[..., None]), -1))


def test_predict_many_zarr_outputs_complete(tmp_path, folder):
    import zarr

    out = tmp_path / "out"
    predict_many(FilterModel(), [folder / "img0.tif"], out, PredictOptions(output_format="zarr", tile=TileConfig(tile_shape=(16, 16))))
    array = zarr.open_array(str(out / "img0.zarr"), mode="r")
    assert array.attrs["incomplete"] is False and array.dtype == np.uint8


def test_predict_many_bad_inputs(tmp_path, folder, rng):
    model = FilterModel()
    write_image(tmp_path / "two.tif", (rng.random((20, 20, 2)) * 255).astype(np.uint8), axes="YXC")
    with pytest.raises(PixlearnError, match="1 channel"):  # (colour images are made grey instead)
        predict_many(model, [folder / "img0.tif", tmp_path / "two.tif"], tmp_path / "o1")
    assert not (tmp_path / "o1" / "img0.tif").exists()  # checked before anything ran
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(PixlearnError, match="broken.tif"):
        predict_many(model, [tmp_path / "broken.tif"], tmp_path / "o2")
    (tmp_path / "file").write_text("")
    with pytest.raises(PixlearnError, match="output folder"):
        predict_many(model, [folder / "img0.tif"], tmp_path / "file" / "out")
    with pytest.raises(PixlearnError, match="format"):
        predict_many(model, [folder / "img0.tif"], tmp_path / "o3", PredictOptions(output_format="png"))


class _FullDisk:
    def __init__(self, array):
        self.array, self.attrs, self.chunks, self.shape = array, array.attrs, array.chunks, array.shape

    def __getitem__(self, key):
        return self.array[key]

    def __setitem__(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_removes_partial_output(tmp_path, folder, monkeypatch):
    from pixlearn.predict import file_outputs

    real = file_outputs.create_output
    monkeypatch.setattr(file_outputs, "create_output", lambda *a, **k: _FullDisk(real(*a, **k)))
    with pytest.raises(PixlearnError, match="disk full"):
        predict_many(FilterModel(), [folder / "img0.tif"], tmp_path / "out", PredictOptions(output_format="zarr"))
    assert not (tmp_path / "out").exists()  # nothing finished: not even the folder it created is left


@pytest.mark.parametrize("fmt", ["zarr", "ome-zarr"])
def test_predict_many_on_dask_cluster_equals_single_process(tmp_path, folder, monkeypatch, fmt):
    distributed = pytest.importorskip("distributed")
    import zarr

    from pixlearn.data import ome
    from pixlearn.data.ngff import check_ngff

    model = FilterModel()
    cfg = TileConfig(tile_shape=(16, 16), mode="blended")
    inputs = sorted(folder.iterdir())
    predict_many(model, inputs, tmp_path / "single", PredictOptions(tile=cfg, output_format=fmt, probabilities=True))
    # make the block size small so that one image is also split into blocks over the workers
    monkeypatch.setitem(distributed_module.DASK_BLOCK_PIXELS, 2, 256)
    monkeypatch.setattr(machinery_module, "OUTPUT_CHUNKS", (16, 16))
    monkeypatch.setattr(ome, "CHUNKS", (16, 16))
    blocks = []  # the block split happens in this process, the blocks run on the workers
    real_split = distributed_module._block_regions
    monkeypatch.setattr(distributed_module, "_block_regions", lambda *a: blocks.extend(real_split(*a)) or real_split(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster:
            predict_many(model, inputs, tmp_path / "dask", PredictOptions(tile=cfg, output_format=fmt, probabilities=True), dask_address=cluster.scheduler_address)
    suffix, level = (".zarr", "") if fmt == "zarr" else (".ome.zarr", "/0")
    for p in inputs:
        for name in (p.stem + suffix, "probabilities/" + p.stem + suffix):
            single = zarr.open_array(str(tmp_path / "single" / name) + level, mode="r")[...]
            spread = zarr.open_array(str(tmp_path / "dask" / name) + level, mode="r")[...]
            np.testing.assert_array_equal(spread, single)
            if fmt == "ome-zarr":
                assert check_ngff(tmp_path / "dask" / name) == []
    assert len(read_manifest(tmp_path / "dask")) == 3
    assert len(blocks) == 3 * 9  # each 48x40 image in 3x3 blocks of 16x16 chunks
    assert read_manifest(tmp_path / "dask")[0]["seconds"] >= 0


# ------------------------------------------------------------------------------------ real models


@pytest.fixture(scope="module")
def classifiers():
    """Tiny random forests, 2D and 3D, fitted on the conftest-style discs."""
    from conftest import _discs
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier

    models = {}
    for ndim, shape in ((2, (48, 40)), (3, (10, 32, 28))):
        image, labels = _discs(shape, 5, (3.0, 6.0), seed=3)
        models[ndim] = (fit_pixel_classifier(
            [image[..., None]], [(labels > 0).astype(np.int64)],
            FeatureConfig(sigmas=(0.7, 1.6)), ClassifierConfig(rf=ForestConfig(n_estimators=4, max_depth=6), n_jobs=1, seed=1),
        ), image[..., None])
    return models


@pytest.mark.parametrize("ndim, tiles", [(2, [(21, 17), (30, 64)]), (3, [(18, 20, 19)])])
def test_pixel_classifier_tiled_equals_whole_exactly(classifiers, ndim, tiles):
    model, image = classifiers[ndim]
    whole = _whole(model, image)
    for tile in tiles:
        _, probs = apply_model(model, image, tile_cfg=TileConfig(tile_shape=tile), return_probabilities=True)
        np.testing.assert_array_equal(probs, whole)


@pytest.mark.parametrize("ndim, tile", [(2, (21, 17)), (3, (18, 20, 19))])
def test_pixel_classifier_labels_alone_come_straight_from_the_forest(classifiers, ndim, tile, monkeypatch):
    """Without probabilities to keep, exact tiles ask the forest for classes (it stops early):
    the same map as the arg-max of the probabilities."""
    model, image = classifiers[ndim]
    cfg = TileConfig(tile_shape=tile)
    asked = []
    original = type(model).predict_core
    monkeypatch.setattr(type(model), "predict_core",
                        lambda self, blocks, inner, labels=False: asked.append(labels) or original(self, blocks, inner, labels))
    labels = apply_model(model, image, tile_cfg=cfg)
    assert asked and all(asked)
    asked.clear()
    again, probs = apply_model(model, image, tile_cfg=cfg, return_probabilities=True)
    assert asked and not any(asked)
    np.testing.assert_array_equal(labels, np.argmax(probs, axis=-1))
    np.testing.assert_array_equal(again, labels)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:-1] and 0 < labels.mean() < 1


def _tiny_network(ndim, task="semantic", seed=0):
    torch = pytest.importorskip("torch")
    from pixlearn.nets.model import NetworkModel
    from pixlearn.nets.unet import UNet, UNetConfig

    cfg = UNetConfig(ndim=ndim, depth=1, base_channels=4, out_channels=2)  # halo 10, divisor 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(cfg)
        for module in net.modules():  # non-trivial batch-norm statistics
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return NetworkModel(cfg, task, net, device="cpu")


@pytest.mark.parametrize("ndim, shape, tile", [(2, (61, 50), (32, 30)), (3, (21, 30, 25), (28, 28, 28))])
@pytest.mark.parametrize("mode", ["blended", "exact"])
def test_tiny_unet_tiled_equals_whole(rng, one_torch_thread, ndim, shape, tile, mode):
    model = _tiny_network(ndim)
    image = rng.normal(size=shape + (1,)).astype(np.float32)
    cfg = TileConfig(tile_shape=tile, mode=mode, batch_size=3)
    labels, probs = apply_model(model, image, tile_cfg=cfg, return_probabilities=True)
    whole = _whole(model, image)
    np.testing.assert_allclose(probs, whole, rtol=0, atol=1e-4)  # float32 convolutions of other sizes
    assert (labels == np.argmax(whole, -1)).mean() > 0.999


def test_tiny_unet_instances_across_tiles(blobs_2d, one_torch_thread):
    model = _tiny_network(2, task="instances")
    image = blobs_2d[0][..., None]
    labels = apply_model(model, image, tile_cfg=TileConfig(tile_shape=(24, 24)))
    from pixlearn.postprocess.instances import instances_from_outputs

    _same_partition(labels, instances_from_outputs(_whole(model, image)))


def test_an_unreachable_dask_scheduler_is_one_clear_error():
    from pixlearn.errors import PixlearnError
    from pixlearn.predict.distributed import dask_client

    with pytest.raises(PixlearnError, match="cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:1", connect_timeout_s=1.0):
            pass
