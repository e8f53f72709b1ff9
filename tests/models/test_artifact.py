from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from pixlearn.classical.config import ClassifierConfig, ForestConfig
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.data.normalize import apply_normalization, compute_normalization
from pixlearn.errors import ModelFileError
from pixlearn.models.model_file import (
    FORMAT,
    describe,
    load_model,
    read_header,
    save_model,
)


@pytest.fixture
def classifier(blobs_2d):
    image, labels = blobs_2d
    model = fit_pixel_classifier(
        [image[..., None]], [(labels > 0).astype(np.int64)],
        FeatureConfig(sigmas=(0.7, 1.6, 3.5)), ClassifierConfig(rf=ForestConfig(n_estimators=8), seed=3),
        class_names=["background", "nucleus"],
    )
    return model, image[..., None]


def _raw(model, image):
    low, high = compute_normalization(image, model.normalization)
    return model.predict_raw(apply_normalization(image, low, high))


@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_save_load_identical_prediction(tmp_path, classifier, name):
    model, image = classifier
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert loaded.kind == "classical" and loaded.n_outputs == 2 and loaded.ndim == 2
    np.testing.assert_array_equal(_raw(loaded, image), _raw(model, image))
    header = read_header(tmp_path / name)
    assert header["format"] == FORMAT and header["model"]["class_names"] == ["background", "nucleus"]
    assert "scikit-learn" in header["versions"]
    assert describe(tmp_path / name)["files"]["classifier.safetensors"] > 0 and header["estimator"]["type"] == "RandomForestClassifier"


def test_save_replaces_existing_model_atomically(tmp_path, classifier):
    model, _ = classifier
    save_model(model, tmp_path / "m")
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def _malicious_skops() -> bytes:
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    return skops.io.dumps(FunctionTransformer(func=os.system))


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _legacy_folder(model, folder):
    """`model` saved as schema 1 wrote it: estimator in ``classifier.skops``."""
    from badinput.crafting import legacy_members, read_members

    members = legacy_members(read_members(save_model(model, folder.with_suffix(".zip"))))
    folder.mkdir()
    for name, data in members.items():
        (folder / name).write_bytes(data)
    return folder


def test_untrusted_types_are_refused(tmp_path, classifier):
    model, _ = classifier
    _legacy_folder(model, tmp_path / "m")
    (tmp_path / "m" / "classifier.skops").write_bytes(_malicious_skops())
    with pytest.raises(ModelFileError, match=r"not trusted: \['posix.system'\]|not trusted: \['nt.system'\]"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("member", ["classifier.safetensors", "classifier.skops", "weights.safetensors"])
def test_pickle_payload_never_runs(tmp_path, classifier, member):
    model, _ = classifier
    if member == "classifier.skops":
        _legacy_folder(model, tmp_path / "m")
    else:
        save_model(model, tmp_path / "m")
    marker = tmp_path / "pwned"
    (tmp_path / "m" / member).write_bytes(pickle.dumps(_Payload(str(marker))))
    if member == "weights.safetensors":
        meta = json.loads((tmp_path / "m" / "model.json").read_text())
        meta["kind"] = "network"
        (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_zip_with_foreign_member_refused(tmp_path, classifier):
    model, _ = classifier
    save_model(model, tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip", "a") as zf:
        zf.writestr("../evil.py", "print('hi')")
    with pytest.raises(ModelFileError, match="unexpected member"):
        load_model(tmp_path / "m.zip")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda h: h.update(schema_version=99), "schema_version 99"),
        (lambda h: h.update(format="other"), "does not describe"),
        (lambda h: h.update(kind="magic"), "unknown model kind"),
    ],
)
def test_bad_headers(tmp_path, classifier, edit, message):
    model, _ = classifier
    save_model(model, tmp_path / "m")
    header = json.loads((tmp_path / "m" / "model.json").read_text())
    edit(header)
    (tmp_path / "m" / "model.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "m")


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model"):
        load_model(tmp_path / "nothing")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a pixlearn model"):
        load_model(tmp_path / "junk.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no model.json"):
        load_model(tmp_path / "empty")
