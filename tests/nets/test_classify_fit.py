"""Fitting, saving, loading and explaining an image classifier on discs vs squares (24x24)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pixlearn.errors import ModelFileError, PixlearnError  # noqa: E402
from pixlearn.models.model_file import load_model, read_header, save_model  # noqa: E402
from pixlearn.nets.classifier_model import ImageClassifierModel  # noqa: E402
from pixlearn.nets.classify_config import ClassifierNetConfig, ClassifyConfig, ClassifyTrainConfig  # noqa: E402
from pixlearn.nets.classify_fit import fit_image_classifier  # noqa: E402
from pixlearn.nets.fit import FitOptions  # noqa: E402

CLASSES = ("disc", "square")
#: Small enough for seconds on one CPU thread; stride-1 stem: a 6x6 last stage for Grad-CAM.
TINY = ClassifyConfig(net=ClassifierNetConfig(width=8, depth=3, stem_stride=1),
                      train=ClassifyTrainConfig(epochs=30, batch_size=16))


@pytest.fixture(scope="module")
def fitted(shapes_2d):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (images, classes, _), _ = shapes_2d
        yield fit_image_classifier(images, classes, CLASSES, config=TINY, options=FitOptions(device="cpu"))
    finally:
        torch.set_num_threads(previous)


def test_fit_tells_discs_from_squares(fitted, shapes_2d):
    _, (images, classes, _) = shapes_2d
    probabilities = fitted.predict_proba(images)
    assert probabilities.shape == (40, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == classes).mean() >= 0.9
    history = fitted.history
    assert history["n_train"] + history["n_val"] == 120 and history["val_macro_f1"] >= 0.8
    assert fitted.input_shape == (24, 24) and fitted.dataset_bounds is not None
    assert fitted.net_config.in_channels == 1 and fitted.net_config.n_classes == 2


@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_save_load_gives_the_same_probabilities(fitted, shapes_2d, tmp_path, name, one_torch_thread):
    _, (images, _, _) = shapes_2d
    path = save_model(fitted, tmp_path / name)
    header = read_header(path)
    assert header["kind"] == "image-classifier" and header["model"]["class_names"] == list(CLASSES)
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, ImageClassifierModel) and loaded.class_names == CLASSES
    np.testing.assert_allclose(loaded.predict_proba(images), fitted.predict_proba(images), atol=1e-5)
    assert loaded.train_config == fitted.train_config and loaded.dataset_bounds == fitted.dataset_bounds


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_explanations_highlight_the_object(fitted, shapes_2d, method, one_torch_thread):
    _, (images, _, masks) = shapes_2d
    inside, outside = [], []
    for image, mask in list(zip(images, masks))[:12]:
        saliency = fitted.explain(image, method)
        assert saliency.shape == mask.shape and 0.0 <= saliency.min() and saliency.max() <= 1.0
        inside.append(saliency[mask].mean())
        outside.append(saliency[~mask].mean())
    assert np.mean(inside) > np.mean(outside) + 0.1
    assert np.mean(np.array(inside) > np.array(outside)) >= 0.75


def _tampered(source, tmp_path, member, change):
    """A copy of the zip model `source` with `change` applied to `member` (model.json as a dict)."""
    out = tmp_path / "tampered.zip"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == member == "model.json":
                header = json.loads(data)
                change(header["model"])
                data = json.dumps(header).encode()
            elif info.filename == member:
                data = change(data)
            zout.writestr(info.filename, data)
    return out


@pytest.mark.parametrize("member, change, message", [
    ("model.json", lambda m: m["net"].update(width=4096), "exceeds the limit"),
    ("model.json", lambda m: m["net"].update(width=16), "has shape"),
    ("model.json", lambda m: m.update(class_names=["a"]), "class_names"),
    ("model.json", lambda m: m.update(dataset_bounds=[[0.0], [0.0]]), "low == high"),
    ("model.json", lambda m: m.update(normalization={"mode": "magic"}), "normalisation mode"),
    ("model.json", lambda m: m.pop("net"), "net settings"),
    ("weights.safetensors", lambda w: w[:200] + b"garbage", "corrupt"),
])
def test_a_tampered_model_file_is_refused(fitted, tmp_path, member, change, message, one_torch_thread):
    source = save_model(fitted, tmp_path / "m.zip")
    with pytest.raises(ModelFileError, match=message) as caught:
        load_model(_tampered(source, tmp_path, member, change))
    assert "tampered.zip" in str(caught.value) and "\n" not in str(caught.value)


def test_resume_continues_where_training_stopped(shapes_2d, tmp_path, one_torch_thread):
    (images, classes, _), _ = shapes_2d
    cfg = ClassifyConfig(net=ClassifierNetConfig(width=4, depth=2), train=ClassifyTrainConfig(epochs=2, batch_size=32))
    options = FitOptions(checkpoint_dir=tmp_path / "ck", device="cpu")
    first = fit_image_classifier(images[:40], classes[:40], CLASSES, config=cfg, options=options)
    assert first.history["epochs"] == 2 and (tmp_path / "ck" / "history.csv").exists()
    longer = cfg.replace(train=cfg.train.replace(epochs=3))
    resumed = fit_image_classifier(images[:40], classes[:40], CLASSES, config=longer,
                                   options=FitOptions(checkpoint_dir=tmp_path / "ck", resume=True, device="cpu"))
    records = json.loads((tmp_path / "ck" / "history.json").read_text())["records"]
    assert resumed.history["epochs"] == 3 and [r["epoch"] for r in records] == [1, 2, 3]


def test_time_limit_and_3d_and_colour(one_torch_thread):
    rng = np.random.default_rng(5)
    volumes = [rng.random((4, 10, 10, 2)).astype(np.float32) + (i % 2) for i in range(12)]
    cfg = ClassifyConfig(net=ClassifierNetConfig(width=4, depth=2),
                         train=ClassifyTrainConfig(epochs=1000, batch_size=4, time_limit_s=1.0, patience=0))
    model = fit_image_classifier(volumes, [i % 2 for i in range(12)], ["dim", "bright"], config=cfg,
                                 options=FitOptions(device="cpu"))
    assert model.history["stop_reason"] == "time_limit" and model.ndim == 3 and model.n_channels == 2
    assert model.predict_proba([volumes[0][:, :7]]).shape == (1, 2)  # any size
    assert model.explain(volumes[1], "gradcam").shape == (4, 10, 10)


def test_bad_training_data_is_refused(shapes_2d):
    (images, classes, _), _ = shapes_2d
    images, classes = images[:6], classes[:6]
    with pytest.raises(PixlearnError, match="single class"):
        fit_image_classifier(images, [0] * 6, CLASSES, config=TINY)
    with pytest.raises(PixlearnError, match="class indices"):
        fit_image_classifier(images, [0, 1, 2, 0, 1, 0], CLASSES, config=TINY)
    with pytest.raises(PixlearnError, match="channel counts"):
        fit_image_classifier(images[:5] + [np.repeat(images[5], 3, axis=-1)], classes, CLASSES, config=TINY)
