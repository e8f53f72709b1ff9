"""A 2D model applied to a 3D stack plane by plane, through every path of the engine."""

from __future__ import annotations

import numpy as np
import pytest

from fake_models import Smoother, discs
from pixlearn.data.images import read_image, write_image
from pixlearn.models.protocol import PixelModel
from pixlearn.predict import PredictOptions, TileConfig, apply_model, predict_many
from pixlearn.predict.planewise import PlanewiseModel, planewise_for


def _stack(n_planes: int = 5) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.random((n_planes, 45, 38, 1)).astype(np.float32)


def test_planewise_model_predicts_each_plane_as_the_2d_model_does():
    inner = Smoother()
    wrapped = planewise_for(inner, (5, 45, 38, 1))
    assert isinstance(wrapped, PlanewiseModel) and isinstance(wrapped, PixelModel)
    assert wrapped.ndim == 3 and wrapped.halo == (0, 6, 6) and planewise_for(inner, (45, 38, 1)) is inner
    stack = _stack()[:, :44, :36]  # planes of the divisor's multiples: no padding, the very same planes
    np.testing.assert_allclose(wrapped.predict_raw(stack), np.stack([inner.predict_raw(p) for p in stack]), atol=1e-6)
    odd = wrapped.predict_raw(_stack())  # other planes are padded to the divisor and cropped back
    assert odd.shape == (5, 45, 38, 1) and inner.shapes[-1] == (5, 48, 40, 1)
    inner.size_divisor = 1  # no padding: the cores go plane by plane to the 2D model's predict_core
    region = (slice(1, 4), slice(6, 30), slice(6, 26))
    cores = wrapped.predict_core(np.stack([_stack()] * 2), region)
    assert cores.shape == (2, 3, 24, 20, 1) and inner.shapes[-1] == (6, 45, 38, 1)
    np.testing.assert_allclose(cores[1], wrapped.predict_raw(_stack())[region], atol=1e-6)


@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_a_2d_model_on_a_stack_equals_the_model_on_each_plane(tile_mode):
    inner = Smoother(tile_mode=tile_mode)
    if tile_mode == "exact":
        inner.size_divisor = 1  # an exactly local model (a filter bank): no padding, exact tiles
    stack = _stack()
    tiled = apply_model(inner, stack, tile_cfg=TileConfig(tile_shape=(2, 24, 20)))
    planes = np.stack([apply_model(inner, plane) for plane in stack])
    np.testing.assert_allclose(tiled, planes, atol=1e-5 if tile_mode == "exact" else 0.02)


def test_instances_of_a_2d_model_are_numbered_through_the_stack(tmp_path):
    image, labels = discs(12.0, shape=(64, 64))
    stack = np.stack([image, image[::-1], image])
    found = apply_model(Smoother(task="instances"), stack)
    assert found.shape == stack.shape[:-1]
    per_plane = [len(np.unique(plane[plane > 0])) for plane in found]
    assert per_plane == [labels.max()] * 3
    assert len(np.unique(found[found > 0])) == 3 * labels.max()  # no id shared between planes
    write_image(tmp_path / "stack.tif", stack[..., 0], axes="ZYX")
    predict_many(Smoother(task="instances"), [tmp_path / "stack.tif"], tmp_path / "out",
                 PredictOptions(output_format="zarr"))
    written = np.asarray(read_image(tmp_path / "out" / "stack.zarr")[0])
    assert written.shape == stack.shape[:-1] and len(np.unique(written[written > 0])) == 3 * labels.max()
