"""The napari plugin, driven for real: built-in models, refused models, object classes by clicking.

Needs napari + Qt (``pip install 'pixlearn[gui]'``) and a display (``xvfb-run -a pytest ...``).
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="the GUI tests need napari: pip install 'pixlearn[gui]'")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

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
