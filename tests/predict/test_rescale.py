"""Objects of another size: a model applied to its input resized to the diameter it was trained on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from fake_models import Smoother, discs
from pixlearn.data.labels import median_object_diameter, object_diameters
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict import TileConfig, apply_model
from pixlearn.predict.rescale import SCALE_LIMITS, ScaledModel, estimate_diameter, scale_for


def test_scaled_model_satisfies_the_protocol_and_resizes_blocks():
    inner = Smoother()
    scaled = ScaledModel(inner, 2.0)
    assert isinstance(scaled, PixelModel)
    block = np.random.default_rng(0).random((2, 30, 22, 1)).astype(np.float32)
    out = scaled.predict_batch(block)
    assert out.shape == block.shape and inner.shapes == [(2, 60, 44, 1)]
    assert scaled.halo == (4, 4) and scaled.to_metadata()["scale"] == 2.0


@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_tiled_scaled_prediction_equals_whole_scaled_prediction(tile_mode):
    image = ndimage.gaussian_filter(np.random.default_rng(1).random((75, 61)), 3).astype(np.float32)[..., None]
    scaled = ScaledModel(Smoother(tile_mode=tile_mode), 1.6)
    whole = apply_model(scaled, image, tile_cfg=TileConfig(tile_shape=(256, 256)))
    tiled = apply_model(scaled, image, tile_cfg=TileConfig(tile_shape=(24, 20)))
    assert scaled.tile_mode == "blended"  # whatever the model's: resampled tiles are not exact
    np.testing.assert_allclose(tiled, whole, atol=0.02)
    np.testing.assert_allclose(whole, image, atol=0.05)  # a smooth image survives up, smooth, down


def test_scale_for_chooses_the_factor_from_the_diameters():
    model = Smoother(diameter=20.0)
    image = np.zeros((32, 32, 1), np.float32)
    assert scale_for(model, image, None) is model
    assert scale_for(model, image, 19.0) is model  # within 10%: not worth resampling
    assert scale_for(model, image, 10.0).factor == pytest.approx(2.0)
    assert scale_for(model, image, 1000.0).factor == SCALE_LIMITS[0]
    with pytest.raises(PixlearnError, match="does not record"):
        scale_for(Smoother(diameter=None), image, 10.0)
    with pytest.raises(PixlearnError, match="positive"):
        scale_for(model, image, -3.0)


def test_auto_diameter_is_estimated_by_a_first_pass():
    image, labels = discs(10.0)
    model = Smoother(task="instances", diameter=20.0)
    scaled = scale_for(model, image, "auto")
    assert scaled.factor == pytest.approx(20.0 / median_object_diameter([labels]), rel=0.15)
    found = apply_model(scaled, image)
    assert found.max() == labels.max()  # the same discs, found at the image's own size
    assert np.median(object_diameters(found)) == pytest.approx(np.median(object_diameters(labels)), rel=0.15)
    assert scale_for(Smoother(task="instances", diameter=10.0), image, "auto") is not None


class Shrinker(Smoother):
    """Finds discs, but shrinks one larger than its trained diameter `D` to ``(D + d) / 2``: objects
    far from the trained size are misjudged, less so the nearer they are (a real network's bias)."""

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        objects, n = ndimage.label(image[..., 0] > 0.5)
        out = np.zeros(image.shape[:-1], np.float32)
        for i in range(1, n + 1):
            inside = objects == i
            d = 2.0 * np.sqrt(inside.sum() / np.pi)
            depth = ndimage.distance_transform_edt(inside)
            out[depth > max(0.0, (d - self.diameter) / 4.0)] = 1.0  # radius shrunk by (d - D) / 4
        return out[..., None]


def test_a_second_pass_can_correct_the_first_estimate():
    image, labels = discs(40.0, shape=(320, 320))
    model = Shrinker(task="instances", diameter=20.0)
    truth = median_object_diameter([labels])
    one, two = estimate_diameter(model, image, passes=1), estimate_diameter(model, image, passes=2)
    assert one == pytest.approx(30.0, abs=2.0)  # (40 + 20) / 2 at the image's own scale
    assert abs(two - truth) < abs(one - truth) / 2  # at 2/3 scale the discs are nearer the trained size
    assert scale_for(model, image, "auto", passes=2).factor == pytest.approx(20.0 / two)
    assert scale_for(model, image, "auto").factor == pytest.approx(20.0 / one)  # one pass by default
    assert estimate_diameter(model, np.zeros((64, 64, 1), np.float32)) is None  # nothing found


def test_cli_diameter_is_checked(tmp_path):
    from pixlearn.app.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tmp_path / "m"), str(tmp_path), "-o", str(tmp_path / "o"),
                                 "--diameter", "big"])
    assert result.exit_code == 2 and "--diameter" in result.output
