"""The napari plugin, driven for real: built-in models, refused models, object classes by clicking,
the object model saved, loaded and applied.

Needs napari + Qt (``pip install 'pixlearn[gui]'``) and a display (``xvfb-run -a pytest ...``).
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="the GUI tests need napari: pip install 'pixlearn[gui]'")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

from qtpy.QtWidgets import QFileDialog  # noqa: E402

from pixlearn.app.napari import widget as W  # noqa: E402
from pixlearn.app.napari.objects_panel import CLICKS_PREFIX  # noqa: E402
from pixlearn.classical.config import ClassifierConfig  # noqa: E402

TIMEOUT_MS = 120_000


def centres(labels: np.ndarray, ids) -> np.ndarray:
    """The centroid of each object of `ids`: where a user clicks it."""
    from scipy import ndimage as ndi

    return np.array(ndi.center_of_mass(labels > 0, labels, list(ids)), float)


@pytest.fixture
def viewer_and_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = W.PixlearnWidget(viewer, object_clf_cfg=ClassifierConfig(n_jobs=1), debounce_ms=50)
    viewer.window.add_dock_widget(widget, name="pixlearn test")
    return viewer, widget


def test_the_builtin_nuclei_model_applies_with_no_training(viewer_and_widget, qtbot, one_torch_thread):
    from pixlearn.metrics.instance import matching
    from pixlearn.synthetic import SyntheticConfig, make_nuclei

    viewer, widget = viewer_and_widget
    image, truth = make_nuclei(SyntheticConfig(shape=(128, 128)), np.random.default_rng(5))
    viewer.add_image(image, name="cells")
    assert widget.builtin_combo.currentData() == "nuclei" and widget.apply_builtin_button.isEnabled()
    with qtbot.waitSignal(widget.model_applied, timeout=TIMEOUT_MS) as blocker:
        widget.apply_builtin()  # the chooser's choice, as the button does
    layer = blocker.args[0]
    assert layer.name == "nuclei result" and layer.__class__.__name__ == "Labels"
    assert layer.data.shape == truth.shape and len(np.unique(layer.data)) - 1 >= 10
    assert matching(truth, np.asarray(layer.data)).f1 >= 0.8
    assert widget.loaded_model.task == "instances" and "nuclei" in widget.status.text()
    assert widget.objects_combo.currentText() == "nuclei result"  # ready to click its objects


def test_an_image_classifier_is_refused_with_one_line(viewer_and_widget, qtbot, tmp_path, one_torch_thread):
    from pixlearn.models.model_file import save_model
    from pixlearn.nets.classifier_model import ImageClassifierModel
    from pixlearn.nets.classify_config import ClassifierNetConfig

    viewer, widget = viewer_and_widget
    viewer.add_image(np.random.default_rng(0).random((48, 48), np.float32), name="cells")
    net = ClassifierNetConfig(ndim=2, in_channels=1, n_classes=2, width=4, depth=1)
    path = save_model(ImageClassifierModel(net, ("healthy", "sick"), device="cpu"), tmp_path / "rbc.zip")
    failures: list[str] = []
    widget.failed.connect(failures.append)
    with qtbot.waitSignal(widget.model_refused, timeout=TIMEOUT_MS) as blocker:
        widget.apply_model_file(path)
    message = blocker.args[0]
    assert message.startswith("rbc.zip is an image classifier") and "\n" not in message
    assert widget.status.text() == message and not failures
    assert [layer.name for layer in viewer.layers] == ["cells"] and widget.loaded_model is None
    # opened through the reader: the plugin's own dock widget refuses it the same way
    _, docked = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    with qtbot.waitSignal(docked.model_refused, timeout=10_000) as blocker:
        assert viewer.open(str(path), plugin="pixlearn") == []
    assert blocker.args[0] == message and docked.status.text() == message
    assert [layer.name for layer in viewer.layers] == ["cells"]


def test_clicking_two_classes_of_objects_classifies_the_rest(viewer_and_widget, qtbot, bright_dim_objects):
    viewer, widget = viewer_and_widget
    image, labels, truth = bright_dim_objects
    viewer.add_image(image, name="blobs")
    viewer.add_labels(labels, name="blob objects")
    assert widget.objects_combo.currentText() == "blob objects"
    chosen = {}
    for k, name in enumerate(("dim", "bright")):
        widget.object_class_list.setCurrentRow(k)  # picking a class makes its Points layer, in add mode
        widget.object_class_list.item(k).setText(name)
        layer = viewer.layers[CLICKS_PREFIX + name]
        assert viewer.layers.selection.active is layer and layer.mode == "add"
        chosen[k] = [i for i, c in sorted(truth.items()) if c == k][:5]
        for point in centres(labels, chosen[k]):
            layer.add(point)  # what a click in add mode does
    # a click on the background and one outside the image change nothing
    viewer.layers[CLICKS_PREFIX + "bright"].add(np.array([1.0, 1.0]))
    viewer.layers[CLICKS_PREFIX + "bright"].add(np.array([500.0, 3.0]))
    with qtbot.waitSignal(widget.objects_trained, timeout=TIMEOUT_MS) as blocker:
        widget.train_objects()
    training = blocker.args[0]
    assert training.n_clicked == 10 and training.model.class_names == ("dim", "bright")
    classes = viewer.layers[W.OBJECT_CLASSES].data
    assert classes.shape == labels.shape and not classes[labels == 0].any()
    clicked = {i for ids in chosen.values() for i in ids}
    held_out = [i for i in truth if i not in clicked]
    right = [int(np.median(classes[labels == i])) == truth[i] + 1 for i in held_out]
    assert len(held_out) == 26 and np.mean(right) >= 0.9
    for i in clicked:  # the clicked objects keep their class
        assert set(np.unique(classes[labels == i])) == {truth[i] + 1}
    # the class colours are the clicks' colours; the counts are shown
    class_layer = viewer.layers[W.OBJECT_CLASSES]
    for k, name in enumerate(("dim", "bright")):
        face = viewer.layers[CLICKS_PREFIX + name].face_color[0]
        np.testing.assert_allclose(class_layer.colormap.map(k + 1), face, atol=1e-3)
    counts = training.predictions.counts()
    assert sum(counts.values()) == 36
    assert widget.object_counts.text() == f"dim: {counts['dim']}, bright: {counts['bright']} (36 objects, 10 clicked)"
    assert abs(counts["bright"] - sum(truth.values())) <= 3


def test_training_objects_needs_two_clicked_classes(viewer_and_widget, qtbot, bright_dim_objects):
    viewer, widget = viewer_and_widget
    image, labels, truth = bright_dim_objects
    viewer.add_image(image, name="blobs")
    viewer.add_labels(labels, name="blob objects")
    widget.object_class_list.setCurrentRow(0)
    viewer.layers[CLICKS_PREFIX + "type 1"].add(centres(labels, [1])[0])
    widget.train_objects()
    assert "at least two classes" in widget.status.text() and not widget.busy
    assert W.OBJECT_CLASSES not in viewer.layers


def click_dim_and_bright(viewer, widget, labels, truth, n: int = 5) -> None:
    """Name the two object classes "dim" and "bright" and click `n` objects of each."""
    for k, name in enumerate(("dim", "bright")):
        widget.object_class_list.setCurrentRow(k)
        widget.object_class_list.item(k).setText(name)
        for point in centres(labels, [i for i, c in sorted(truth.items()) if c == k][:n]):
            viewer.layers[CLICKS_PREFIX + name].add(point)


def test_a_saved_object_model_loads_into_a_fresh_widget_and_gives_the_same_classes(
        viewer_and_widget, qtbot, tmp_path, monkeypatch, bright_dim_objects):
    from pixlearn.models.model_file import read_header

    viewer, widget = viewer_and_widget
    image, labels, truth = bright_dim_objects
    viewer.add_image(image, name="blobs")
    viewer.add_labels(labels, name="blob objects")
    assert not widget.save_object_model_button.isEnabled() and not widget.classify_objects_button.isEnabled()
    click_dim_and_bright(viewer, widget, labels, truth)
    with qtbot.waitSignal(widget.objects_trained, timeout=TIMEOUT_MS):
        widget.train_objects_button.click()
    before = np.array(viewer.layers[W.OBJECT_CLASSES].data)
    counts = widget.object_counts.text().replace(", 10 clicked", "")
    assert widget.save_object_model_button.isEnabled()
    path = tmp_path / "blob classes.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *args: (str(path), "")))
    with qtbot.waitSignal(widget.model_saved, timeout=TIMEOUT_MS) as blocker:
        widget.save_object_model_button.click()
    assert blocker.args[0] == path and read_header(path)["kind"] == "object-classifier"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    for name in (W.OBJECT_CLASSES, CLICKS_PREFIX + "dim", CLICKS_PREFIX + "bright"):
        viewer.layers.remove(name)  # a new session: objects and image only

    # dropped on the window (the reader): the plugin's dock widget takes it into its object panel
    _, docked = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    refused: list[str] = []
    docked.model_refused.connect(refused.append)
    assert docked.object_model is None and viewer.open(str(path), plugin="pixlearn") == []
    assert docked.object_model.class_names == ("dim", "bright") and docked.object_class_names[:2] == ("dim", "bright")
    assert docked.classify_objects_button.isEnabled() and docked.loaded_model is None and not refused
    assert "blob classes.zip" in docked.status.text() and W.OBJECT_CLASSES not in viewer.layers
    assert docked.objects_combo.currentText() == "blob objects"
    with qtbot.waitSignal(docked.objects_classified, timeout=TIMEOUT_MS) as blocker:
        docked.classify_objects_button.click()
    assert blocker.args[0].n_clicked is None
    np.testing.assert_array_equal(viewer.layers[W.OBJECT_CLASSES].data, before)
    assert docked.object_counts.text() == counts
    viewer.layers.remove(W.OBJECT_CLASSES)

    # through the file button's path (apply model file...): the same, nothing applied as pixels
    fresh = W.PixlearnWidget(viewer, debounce_ms=50)
    failures: list[str] = []
    fresh.failed.connect(failures.append)
    fresh.apply_model_file(path)
    qtbot.waitUntil(lambda: fresh.object_model is not None, timeout=TIMEOUT_MS)
    assert fresh.loaded_model is None and not failures
    assert [layer.name for layer in viewer.layers] == ["blobs", "blob objects"]
    with qtbot.waitSignal(fresh.objects_classified, timeout=TIMEOUT_MS):
        fresh.classify_objects()
    np.testing.assert_array_equal(viewer.layers[W.OBJECT_CLASSES].data, before)
    # a folder of images is no place for an object classifier: one line, nothing written
    folder, out = tmp_path / "images", tmp_path / "out"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((32, 32), np.float32))
    qtbot.waitUntil(lambda: not fresh.busy, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(fresh.failed, timeout=TIMEOUT_MS) as blocker:
        fresh.apply_to_folder(path, folder, out)
    assert "is an object classifier" in blocker.args[0] and "classify objects" in blocker.args[0]
    assert not out.exists()


def test_saving_the_object_model_never_replaces_a_file_pixlearn_did_not_write(
        viewer_and_widget, qtbot, tmp_path, bright_dim_objects):
    from pixlearn.app.napari.object_classes import clicked_objects, train_object_classes
    from pixlearn.models.model_file import load_model

    viewer, widget = viewer_and_widget
    image, labels, truth = bright_dim_objects
    with pytest.raises(ValueError, match="no object classifier trained yet"):
        widget.save_model(tmp_path / "early.zip", "objects")
    widget.classify_objects()
    assert "train or load an object model first" in widget.status.text()
    ids = [[i for i, c in sorted(truth.items()) if c == k][:3] for k in (0, 1)]
    clicked = clicked_objects(labels, [centres(labels, group) for group in ids])
    model = train_object_classes(image, labels, clicked, ("dim", "bright"), clf_cfg=ClassifierConfig(n_jobs=1)).model
    widget.set_object_model(model)
    assert widget.save_object_model_button.isEnabled()
    mine = tmp_path / "notes.zip"
    mine.write_bytes(b"my notes, not a model")
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as blocker:
        widget.save_model(mine, "objects")
    assert "not a pixlearn model" in blocker.args[0] and mine.read_bytes() == b"my notes, not a model"
    assert widget.status.text() == f"not saved: {blocker.args[0]}" and not widget.busy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.zip"]
    # a pixlearn model there is replaced (as for pixel models), only once complete
    target = tmp_path / "objects.zip"
    for _ in range(2):
        with qtbot.waitSignal(widget.model_saved, timeout=TIMEOUT_MS):
            widget.save_model(target, "objects")
    assert load_model(target).class_names == ("dim", "bright")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.zip", "objects.zip"]
    # classifying without an image or objects says so (once the save job has let go of the queue)
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    widget.classify_objects()
    assert "choose a Labels layer of objects first" in widget.status.text() and not widget.busy
