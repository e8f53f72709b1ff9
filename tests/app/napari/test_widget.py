"""The napari plugin, driven for real: paint, live preview, uncertainty, suggestions, U-Net, files.

Needs napari + Qt (``pip install 'pixlearn[gui]'``) and a display (``xvfb-run -a pytest ...``).
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="the GUI tests need napari: pip install 'pixlearn[gui]'")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

from pixlearn.app.napari import widget as W  # noqa: E402
from pixlearn.classical.features import FeatureConfig  # noqa: E402
from pixlearn.classical.preview import PreviewConfig  # noqa: E402


def stroke_points(truth: np.ndarray, n: int, seed: int) -> list[tuple[int, np.ndarray]]:
    """(painted value, coordinate) pairs: `n` points well inside each class (1 background, 2 object)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    out = []
    for value, mask in ((1, truth == 0), (2, truth > 0)):
        inner = ndi.binary_erosion(mask, iterations=3)
        coords = np.argwhere(inner)
        for c in coords[rng.choice(len(coords), n, replace=False)]:
            out.append((value, c))
    return out


def paint(layer, points, brush: int = 5) -> None:
    """Paint brush dabs at `points` on a Labels layer, the way a user's strokes arrive."""
    layer.brush_size = brush
    for value, coord in points:
        layer.paint(tuple(float(c) for c in coord), value, refresh=False)
    layer.refresh()


FAST = FeatureConfig(sigmas=(0.7, 1.6, 3.5))
TIMEOUT_MS = 120_000


@pytest.fixture
def setup(make_napari_viewer, qtbot, nuclei):
    image, truth = nuclei
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = W.PixlearnWidget(viewer, feature_cfg=FAST,
                              preview_cfg=PreviewConfig(n_estimators=8, n_jobs=2, suggestion_tile=(32, 32)),
                              debounce_ms=50)
    viewer.window.add_dock_widget(widget, name="pixlearn test")
    return viewer, widget, image, truth


def _paint_and_wait(qtbot, widget, truth, n=25, seed=0):
    layer = widget.ensure_scribbles()
    with qtbot.waitSignal(widget.preview_updated, timeout=TIMEOUT_MS):
        paint(layer, stroke_points(truth, n, seed))
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    return layer


def test_painting_gives_a_live_preview_and_uncertainty(setup, qtbot):
    viewer, widget, image, truth = setup
    assert widget.image_combo.currentText() == "nuclei" and widget.axes == "YX"
    layer = _paint_and_wait(qtbot, widget, truth)
    assert set(np.unique(layer.data)) == {0, 1, 2}
    preview = viewer.layers[W.PREVIEW].data
    predicted = preview > 0
    assert predicted.mean() > 0.9  # the view covers the image
    assert np.mean((preview[predicted] - 1) == truth[predicted]) > 0.9
    uncertainty = viewer.layers[W.UNCERTAINTY].data
    assert uncertainty.shape == truth.shape and 0 <= uncertainty.min() and uncertainty.max() <= 1
    assert uncertainty[predicted].std() > 0
    # a second stroke updates it again (debounced, in the background)
    with qtbot.waitSignal(widget.preview_updated, timeout=TIMEOUT_MS):
        paint(layer, stroke_points(truth, 10, seed=1))
    assert widget.session.n_labelled == int(np.count_nonzero(layer.data))
    assert "updated" in widget.status.text()


def test_class_names_colours_and_painting_class(setup, qtbot):
    viewer, widget, _, _ = setup
    layer = widget.ensure_scribbles()
    assert widget.class_names == W.DEFAULT_CLASSES
    widget.class_list.item(1).setText("nucleus")
    widget.add_class("edge")
    assert widget.class_names == ("background", "nucleus", "edge")
    assert layer.selected_label == 3
    widget.class_list.setCurrentRow(0)
    assert layer.selected_label == 1
    colors = [tuple(np.round(layer.colormap.map(k), 3)) for k in (1, 2, 3)]
    assert len(set(colors)) == 3 and all(c[3] == 1 for c in colors)
    assert layer.colormap.map(0)[3] == 0  # unlabelled is transparent


def test_suggestions_avoid_strokes(setup, qtbot):
    viewer, widget, _, truth = setup
    layer = _paint_and_wait(qtbot, widget, truth)
    with qtbot.waitSignal(widget.suggestions_updated, timeout=TIMEOUT_MS):
        widget.suggest(2)
    shapes = viewer.layers[W.SUGGESTIONS]
    assert len(shapes.data) == 2
    scores = shapes.metadata["scores"]
    assert scores == sorted(scores, reverse=True)
    for box in shapes.data:
        (r0, c0), (r1, c1) = box.min(axis=0).astype(int), box.max(axis=0).astype(int)
        assert not layer.data[r0 : r1 + 1, c0 : c1 + 1].any()


def test_unet_trains_from_the_widget_and_can_be_stopped(setup, qtbot, one_torch_thread):
    viewer, widget, _, truth = setup
    _paint_and_wait(qtbot, widget, truth)
    widget.depth_spin.setValue(1)
    widget.channels_spin.setValue(4)
    widget.epochs_spin.setValue(2)
    widget.steps_spin.setValue(2)
    widget.patch_spin.setValue(32)
    widget.batch_spin.setValue(2)
    with qtbot.waitSignal(widget.unet_finished, timeout=TIMEOUT_MS) as blocker:
        widget.train_unet()
    model = blocker.args[0]
    qtbot.waitUntil(lambda: not widget.training, timeout=TIMEOUT_MS)
    assert model.history["epochs"] == 2 and model.class_names == W.DEFAULT_CLASSES
    result = viewer.layers[W.UNET].data
    assert result.shape == truth.shape and set(np.unique(result)) <= {1, 2}
    assert widget.progress_bar.value() == 2 and "best epoch" in widget.progress_label.text()
    assert len(widget.curve.records) == 2
    # stop after the first epoch: the best model so far is kept
    widget.epochs_spin.setValue(50)
    widget.unet_progress.connect(lambda record: widget.stop_unet())
    with qtbot.waitSignal(widget.unet_finished, timeout=TIMEOUT_MS) as blocker:
        widget.train_unet()
    assert blocker.args[0].history["stop_reason"] == "callback"
    assert blocker.args[0].history["epochs"] < 50


def test_save_apply_and_reload_models_and_scribbles(setup, qtbot, tmp_path):
    viewer, widget, image, truth = setup
    layer = _paint_and_wait(qtbot, widget, truth)
    path = tmp_path / "rf.zip"
    with qtbot.waitSignal(widget.model_saved, timeout=TIMEOUT_MS):
        widget.save_model(path)
    assert path.exists() and widget.rf_model.feature_cfg == FAST
    with qtbot.waitSignal(widget.model_applied, timeout=TIMEOUT_MS) as blocker:
        widget.apply_model_file(path)
    applied = blocker.args[0].data
    assert np.mean((applied - 1) == truth) > 0.9
    # scribbles and settings round trip
    widget.class_list.item(1).setText("nucleus")
    saved = widget.save_scribbles(tmp_path / "strokes.tif")
    strokes = layer.data.copy()
    layer.data = np.zeros_like(strokes)
    widget.class_list.item(1).setText("something else")
    widget.load_scribbles(saved)
    np.testing.assert_array_equal(widget.scribbles_layer.data, strokes)
    assert widget.class_names == ("background", "nucleus")


def test_multichannel_and_3d_images(make_napari_viewer, qtbot):
    from pixlearn.synthetic import SyntheticConfig, make_nuclei

    viewer = make_napari_viewer()
    image, labels = make_nuclei(SyntheticConfig(shape=(12, 64, 64)), np.random.default_rng(2))
    truth = (labels > 0).astype(np.uint8)
    two = np.stack([image, np.random.default_rng(0).integers(0, 50, image.shape).astype(np.uint16)])  # CZYX
    viewer.add_image(two, name="two channels", metadata={"pixlearn_axes": "CZYX"})
    widget = W.PixlearnWidget(viewer, feature_cfg=FAST, preview_cfg=PreviewConfig(n_estimators=8), debounce_ms=50)
    viewer.window.add_dock_widget(widget)
    assert widget.axes == "CZYX" and widget.spatial == (12, 64, 64)
    layer = widget.ensure_scribbles()
    assert layer.data.shape == (12, 64, 64)
    viewer.dims.set_current_step(1, 6)  # plane 6 (axis 1 is Z; axis 0 is C)
    points = [(v, np.array([6, *c])) for v, c in stroke_points(truth[6], 12, 0)]
    with qtbot.waitSignal(widget.preview_updated, timeout=TIMEOUT_MS):
        paint(layer, points, brush=3)
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    preview = viewer.layers[W.PREVIEW].data
    assert preview.shape == (12, 64, 64)
    assert (preview[6] > 0).all() and not preview[0].any()  # only the plane on screen
    assert np.mean(preview[6] - 1 == truth[6]) > 0.85


def test_plugin_manifest_reader_sample_and_screenshot(make_napari_viewer, qtbot, tmp_path):
    from pixlearn.data.images import write_image

    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    viewer.open_sample("pixlearn", "nuclei")
    assert viewer.layers["synthetic nuclei"].data.shape == (512, 512)
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    assert isinstance(widget, W.PixlearnWidget)
    path = write_image(tmp_path / "cells.tif", np.random.default_rng(0).integers(0, 255, (2, 40, 48), np.uint8),
                       axes="CYX")
    layers = viewer.open(str(path), plugin="pixlearn")
    assert layers[0].data.shape == (2, 40, 48) and layers[0].metadata["pixlearn_axes"] == "CYX"
    viewer.reset_view()
    shot = viewer.screenshot(str(tmp_path / "shot.png"), canvas_only=True)
    assert (tmp_path / "shot.png").stat().st_size > 1000
    assert shot.ndim == 3 and shot[..., :3].std() > 0


def test_pixlearn_gui_opens_images_with_the_widget_docked(qtbot, tmp_path, monkeypatch):
    from pixlearn.app.gui import open_viewer
    from pixlearn.data.images import write_image

    path = write_image(tmp_path / "a.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    viewer, widget = open_viewer([path], show=False)
    try:
        assert [layer.name for layer in viewer.layers] == ["a"]
        assert isinstance(widget, W.PixlearnWidget) and widget.image_combo.currentText() == "a"
    finally:
        viewer.close()


def test_opening_a_model_file_applies_it_to_the_current_image(make_napari_viewer, qtbot, tmp_path, nuclei):
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.models.model_file import save_model

    image, truth = nuclei
    targets = np.full(truth.shape, -1, np.int64)
    for value, coord in stroke_points(truth, 30, 3):
        targets[tuple(coord)] = value - 1
    model = fit_pixel_classifier([image[..., None]], [targets], FAST, class_names=("background", "nucleus"))
    path = save_model(model, tmp_path / "model.zip")
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    with qtbot.waitSignal(widget.model_applied, timeout=TIMEOUT_MS) as blocker:
        assert viewer.open(str(path), plugin="pixlearn") == []  # the reader adds no layer itself
    applied = blocker.args[0]
    assert applied.name == "model result" and np.mean((applied.data - 1) == truth) > 0.85


def test_apply_a_model_to_a_folder(setup, qtbot, tmp_path):
    from pixlearn.data.images import read_labels
    from pixlearn.data.writers import write_image

    viewer, widget, image, truth = setup
    _paint_and_wait(qtbot, widget, truth)
    model = tmp_path / "rf.zip"
    with qtbot.waitSignal(widget.model_saved, timeout=TIMEOUT_MS):
        widget.save_model(model)
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a", "b"):
        write_image(folder / f"{name}.tif", image)
    with qtbot.waitSignal(widget.folder_applied, timeout=TIMEOUT_MS) as blocker:
        widget.apply_to_folder(model, folder, tmp_path / "out")
    assert blocker.args[0].name == "manifest.jsonl"
    for name in ("a", "b"):
        assert np.mean(read_labels(tmp_path / "out" / f"{name}.tif") == truth) > 0.9


def test_train_a_unet_for_instances_on_a_labels_layer(setup, qtbot):
    viewer, widget, image, truth = setup
    from scipy import ndimage as ndi

    objects, n = ndi.label(truth > 0)
    layer = viewer.add_labels(objects, name="hand-made objects")
    assert widget.targets_combo.findText(f"{layer.name} (instances)") >= 0  # offered as a training target
    widget.epochs_spin.setValue(1)
    widget.steps_spin.setValue(2)
    widget.depth_spin.setValue(1)
    widget.channels_spin.setValue(4)
    widget.patch_spin.setValue(32)
    widget.batch_spin.setValue(2)
    with qtbot.waitSignal(widget.unet_finished, timeout=TIMEOUT_MS) as blocker:
        widget.train_unet(instances_layer=layer.name)
    model = blocker.args[0]
    assert model.task == "instances" and model.n_outputs == 2
    result = viewer.layers[W.UNET].data
    assert result.shape == objects.shape and result.dtype.kind in "iu"
