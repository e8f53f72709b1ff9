"""Crafted model files: every array scikit-learn or the numba kernels index is checked at load."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from badinput.crafting import (
    edit_predictor,
    edit_tree,
    first_svc,
    fit_tiny_classical,
    legacy_members,
    read_members,
    tiny_image,
    with_estimator,
    with_header,
    write_members,
)
from pixlearn.errors import ModelFileError
from pixlearn.models.model_file import load_model, save_model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Valid tiny model zips: rf, hgb (2 and 3 classes), svm (rbf)."""
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name, method, k in (("rf", "rf", 2), ("hgb", "hgb", 2), ("hgb3", "hgb", 3), ("svm", "svm", 2)):
        paths[name] = save_model(fit_tiny_classical(method, k), root / f"{name}.zip")
    return paths


def _set(obj_path, value):
    def edit(est):
        *parents, last = obj_path.split(".")
        target = est
        for part in parents:
            target = getattr(target, part)
        setattr(target, last, value)

    return edit


TREE_ATTACKS = {
    "rf child beyond the tree": ("rf", edit_tree("left_child", -1, 10**6), "child index out of range"),
    "rf negative child": ("rf", edit_tree("right_child", -1, -7), "child"),
    "rf child pointing back (cycle)": ("rf", edit_tree("left_child", -1, 0), "child index out of range"),
    "rf leaf with one child": ("rf", edit_tree("left_child", 2, 5), "child|one tree"),
    "rf feature beyond the features": ("rf", edit_tree("feature", -1, 10**5), "feature index"),
    "rf negative feature": ("rf", edit_tree("feature", -1, -3), "feature index"),
    "rf NaN threshold": ("rf", edit_tree("threshold", -1, np.nan), "threshold"),
    "rf -inf threshold": ("rf", edit_tree("threshold", -1, -np.inf), "threshold"),
    "rf missing_go_to_left 7": ("rf", edit_tree("missing_go_to_left", -1, 7), "missing_go_to_left"),
    "rf tree of another width": ("rf", lambda e: setattr(e, "n_features_in_", 99), "features"),
    "rf classes beyond the model": ("rf", _set("classes_", np.array([0, 5])), "classes_"),
    "rf n_classes_ lies": ("rf", _set("n_classes_", 3), "n_classes_"),
    "rf no trees": ("rf", _set("estimators_", []), "estimators_"),
    "rf tree replaced by a dummy": ("rf", lambda e: e.estimators_.__setitem__(0, _dummy()), "DummyClassifier"),
    "hgb child beyond the tree": ("hgb", edit_predictor("left", -1, 10**6), "child index out of range"),
    "hgb child pointing back": ("hgb", edit_predictor("right", -1, 0), "child index out of range"),
    "hgb feature beyond the features": ("hgb", edit_predictor("feature_idx", -1, 10**5), "feature index"),
    "hgb negative feature": ("hgb", edit_predictor("feature_idx", -1, -1), "feature index"),
    "hgb is_leaf 3": ("hgb", edit_predictor("is_leaf", 0, 3), "is_leaf"),
    "hgb inner node marked leaf": ("hgb", edit_predictor("is_leaf", 0, 1), "one tree"),
    "hgb categorical split": ("hgb", edit_predictor("is_categorical", -1, 1), "categorical"),
    "hgb NaN threshold": ("hgb", edit_predictor("num_threshold", -1, np.nan), "NaN threshold"),
    "hgb3 trees per iteration lie": ("hgb3", _set("n_trees_per_iteration_", 1), "n_trees_per_iteration_"),
    "hgb3 one tree missing": ("hgb3", lambda e: e._predictors[0].pop() and None, "does not hold"),
    "svm support vectors of another width": (
        "svm", lambda p: setattr(first_svc(p), "support_vectors_", np.zeros((3, 99))), "support_vectors_"),
    "svm n_support beyond the vectors": (
        "svm", lambda p: setattr(first_svc(p), "_n_support", np.array([10**6, 1], np.int32)), "support vector counts"),
    "svm dual coefficients short": (
        "svm", lambda p: setattr(first_svc(p), "_dual_coef_", np.zeros((1, 1))), "_dual_coef_"),
    "svm precomputed kernel": ("svm", lambda p: setattr(first_svc(p), "kernel", "precomputed"), "kernel"),
    "svm scaler of another width": ("svm", lambda p: setattr(p.steps[0][1], "mean_", np.zeros(5)), "mean_"),
}


def _dummy():
    from sklearn.dummy import DummyClassifier

    return DummyClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.parametrize("case", sorted(TREE_ATTACKS))
def test_crafted_estimator_arrays_are_refused(tmp_path, saved, case):
    name, edit, message = TREE_ATTACKS[case]
    bad = with_estimator(saved[name], tmp_path / "bad.zip", edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


@pytest.mark.parametrize("kind", ["dummy", "knn", "logistic", "bare svc", "decision tree"])
def test_types_skops_trusts_by_default_are_refused(tmp_path, saved, kind):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x = np.random.default_rng(0).normal(size=(20, 4))
    y = np.arange(20) % 2
    make = {"dummy": DummyClassifier, "knn": lambda: KNeighborsClassifier(3), "logistic": LogisticRegression,
            "bare svc": SVC, "decision tree": DecisionTreeClassifier}[kind]
    bad = with_estimator(saved["rf"], tmp_path / "bad.zip", lambda _: make().fit(x, y))
    with pytest.raises(ModelFileError, match="a pixlearn model holds|not trusted"):
        load_model(bad)


@pytest.mark.parametrize("name", ["rf", "hgb", "hgb3", "svm"])
def test_valid_models_pass_validation(saved, name):
    assert load_model(saved[name]).n_outputs in (2, 3)


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pixlearn", *map(str, args)], capture_output=True, text=True, timeout=300,
        cwd=cwd, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "NUMBA_CACHE_DIR": str(cwd / "numba")},
    )


@pytest.mark.parametrize(
    "case",
    ["rf child beyond the tree", "hgb feature beyond the features"]
    + [pytest.param(c, marks=[pytest.mark.slow, pytest.mark.fuzz]) for c in
       ("rf negative child", "rf feature beyond the features", "hgb child beyond the tree")],
)
def test_crafted_tree_never_crashes_prediction(tmp_path, saved, case):
    """The whole ``pixlearn predict`` in a subprocess: a segfault would show as rc -11."""
    name, edit, message = TREE_ATTACKS[case]
    bad = with_estimator(saved[name], tmp_path / "bad.zip", edit)
    np.save(tmp_path / "in.npy", tiny_image())
    done = _cli("predict", bad, tmp_path / "in.npy", "-o", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "bad.zip" in lines[0]
    assert not (tmp_path / "out").exists()


# zip tricks ------------------------------------------------------------------------------------


def test_duplicate_model_json_refused(tmp_path, saved):
    members = read_members(saved["rf"])
    items = list(members.items()) + [("model.json", b'{"format": "pixlearn-model"}')]
    with pytest.warns(UserWarning, match="Duplicate name"):
        bad = write_members(tmp_path / "dup.zip", items)
    with pytest.raises(ModelFileError, match="appears twice"):
        load_model(bad)


def test_encrypted_and_unknown_compression_refused(tmp_path, saved):
    data = saved["rf"].read_bytes()
    # flip the general-purpose "encrypted" bit of the first local and central headers
    enc = bytearray(data)
    central = enc.find(b"PK\x01\x02")
    enc[central + 8] |= 0x1
    (tmp_path / "enc.zip").write_bytes(bytes(enc))
    with pytest.raises(ModelFileError, match="encrypted"):
        load_model(tmp_path / "enc.zip")
    odd = bytearray(data)
    odd[central + 10 : central + 12] = (99).to_bytes(2, "little")
    (tmp_path / "odd.zip").write_bytes(bytes(odd))
    with pytest.raises(ModelFileError, match="compression method 99"):
        load_model(tmp_path / "odd.zip")


def test_symlink_member_refused(tmp_path, saved):
    members = read_members(saved["rf"])
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == "thresholds.json" or name == "model.json":
                info.external_attr = (0o120777 << 16) if name == "model.json" else 0
            zf.writestr(info, data)
    with pytest.raises(ModelFileError, match="symbolic link"):
        load_model(tmp_path / "link.zip")


def test_zip_bomb_refused_before_decompressing(tmp_path, saved):
    members = read_members(saved["rf"])
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", members["model.json"])
        with zf.open("thresholds.json", "w", force_zip64=True) as fh:
            chunk = b" " * 2**20
            for _ in range(80):  # 80 MiB of spaces, a few hundred KiB compressed
                fh.write(chunk)
    with pytest.raises(ModelFileError, match="implausibly large"):
        load_model(tmp_path / "bomb.zip")


def test_nested_skops_bomb_refused(tmp_path, saved, monkeypatch):
    """classifier.skops is itself a zip: a small member that declares a huge array is refused."""
    import io

    import skops.io

    import pixlearn.models.skops_legacy as legacy

    members = legacy_members(read_members(saved["rf"]))
    estimator = skops.io.loads(members["classifier.skops"], trusted=skops.io.get_untrusted_types(
        data=members["classifier.skops"]))
    estimator.padding_ = np.zeros(2**23)  # 64 MiB of zeros, deflated to ~64 KiB
    inner = read_members_bytes(skops.io.dumps(estimator))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in inner.items():
            zf.writestr(name, data)
    members["classifier.skops"] = buffer.getvalue()
    bomb = write_members(tmp_path / "bomb.zip", members)
    monkeypatch.setattr(legacy, "memory_budget", lambda: 32 * 2**20)
    with pytest.raises(ModelFileError, match="of classifier.skops is implausibly large"):
        load_model(bomb)


def read_members_bytes(data: bytes) -> dict[str, bytes]:
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


# model.json ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda h: h.update(versions=["1.0"]), "versions must map"),
        (lambda h: h.update(versions={"pixlearn": 3}), "versions must map"),
        (lambda h: h.update(nested=json.loads("[" * 40 + "]" * 40)), "nests deeper"),
        (lambda h: h["model"].update(ndim=7), "ndim must be 2 or 3"),
        (lambda h: h["model"].update(n_channels=10**9), "n_channels"),
        (lambda h: h["model"].update(class_names=["only"]), "class_names"),
        (lambda h: h["model"].update(halo=[10**8, 3]), "halo"),
        (lambda h: h["model"].update(training=[1, 2]), "inconsistent"),
    ],
)
def test_bad_header_values(tmp_path, saved, edit, message):
    bad = with_header(saved["rf"], tmp_path / "bad.zip", edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


@pytest.mark.parametrize("member", ["model.json", "thresholds.json"])
def test_json_nesting_bomb(tmp_path, saved, member):
    members = read_members(saved["rf"])
    members[member] = b"[" * 200_000 + b"]" * 200_000
    bad = write_members(tmp_path / "bomb.zip", members)
    with pytest.raises(ModelFileError, match=f"{member} (nests too deeply|nests deeper)"):
        load_model(bad)


def test_thresholds_must_be_an_object(tmp_path, saved):
    members = read_members(saved["rf"])
    members["thresholds.json"] = b"[1, 2]"
    with pytest.raises(ModelFileError, match="must hold a JSON object"):
        load_model(write_members(tmp_path / "t.zip", members))


def test_fifo_member_of_a_model_folder_is_refused(tmp_path, saved):
    import os

    folder = tmp_path / "m"
    save_model(load_model(saved["rf"]), folder)
    (folder / "thresholds.json").unlink(missing_ok=True)
    os.mkfifo(folder / "thresholds.json")
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model(folder)
