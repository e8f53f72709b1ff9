"""PNG figures: written atomically, readable, of the documented size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixlearn.app import figures
from pixlearn.app.figures import label_colors, save_panel

# import matplotlib at collection so that its import time is not charged to the first test
pytest.importorskip("matplotlib.figure")
pytest.importorskip("matplotlib.backends.backend_agg")

DPI = 40


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 4000, size=shape).astype(np.uint16)
    truth = np.zeros(shape, np.uint16)
    truth[..., 2:6, 3:9] = 1
    truth[..., 8:12, 3:9] = 2
    prediction = (truth > 0).astype(np.uint8)
    probability = rng.uniform(0, 1, size=shape + (2,)).astype(np.float32)
    return raw, truth, prediction, probability


def _png_size(path):
    with Image.open(path) as im:
        im.load()
        return im.size, im.format


@pytest.mark.parametrize("shape", [(16, 20), (5, 16, 20)], ids=["2d", "3d"])
def test_save_panel_writes_png_of_expected_size(tmp_path, shape):
    raw, truth, prediction, probability = _data(shape)
    path = save_panel(tmp_path / "sub" / "panel.png", raw, truth, prediction, probability, dpi=DPI)
    (width, height), fmt = _png_size(path)
    assert fmt == "PNG"
    assert width == round(4 * figures.PANEL_INCHES * DPI)
    assert height == round((figures.PANEL_INCHES + figures.TITLE_INCHES) * DPI)
    assert [p.name for p in path.parent.iterdir()] == ["panel.png"]  # no temporary left over


def test_save_panel_without_probability_and_rgb_raw(tmp_path):
    raw, truth, prediction, _ = _data((16, 20))
    rgb = np.stack([raw, raw // 2, raw // 3], axis=-1)
    path = save_panel(tmp_path / "p.png", rgb, truth, prediction, dpi=DPI, titles=("a", "b", "c"))
    (width, _), _ = _png_size(path)
    assert width == round(3 * figures.PANEL_INCHES * DPI)


def test_save_panel_rejects_mismatched_shapes(tmp_path):
    raw, truth, prediction, _ = _data((16, 20))
    with pytest.raises(ValueError, match="spatial shape"):
        save_panel(tmp_path / "p.png", raw, truth, prediction[:-1], dpi=DPI)
    assert not (tmp_path / "p.png").exists()


def test_label_colors_background_black_and_consistent():
    labels = np.array([[0, 1, 1], [2, 0, 3]])
    rgb = label_colors(labels)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[labels == 0], 0.0)
    assert (rgb[labels > 0].max(axis=1) > 0).all()
    np.testing.assert_array_equal(rgb[0, 1], rgb[0, 2])
    with pytest.raises(ValueError, match="non-negative"):
        label_colors(-labels)


def test_save_label_panels_one_panel_per_label_image(tmp_path):
    raw, truth, prediction, _ = _data((16, 20))
    path = figures.save_label_panels(tmp_path / "sub" / "labels.png", raw, [prediction, truth, truth],
                                     titles=("image", "a", "b", "truth"), dpi=DPI)
    (width, height), fmt = _png_size(path)
    assert fmt == "PNG" and width == round(4 * figures.PANEL_INCHES * DPI)
    assert height == round((figures.PANEL_INCHES + figures.TITLE_INCHES) * DPI)
    assert [p.name for p in path.parent.iterdir()] == ["labels.png"]


def test_save_label_panels_darkens_edges_between_touching_objects(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(figures, "_write_panels", lambda path, panels, *args: shown.extend(panels))
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0]])
    figures.save_label_panels(tmp_path / "p.png", np.zeros((3, 4)), [labels])
    rgb = shown[1][0]
    plain = label_colors(labels)
    np.testing.assert_allclose(rgb[0, 1], 0.35 * plain[0, 1])  # 1 next to 2: an edge
    np.testing.assert_allclose(rgb[0, 0], plain[0, 0])         # inside 1
    np.testing.assert_array_equal(rgb[2], 0.0)                 # background stays black


def test_save_label_panels_rejects_bad_shapes(tmp_path):
    raw, truth, _, _ = _data((16, 20))
    with pytest.raises(ValueError, match="no label images"):
        figures.save_label_panels(tmp_path / "p.png", raw, [])
    with pytest.raises(ValueError, match="spatial shape"):
        figures.save_label_panels(tmp_path / "p.png", raw, [truth[:-1]])
    assert not (tmp_path / "p.png").exists()
