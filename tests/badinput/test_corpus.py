"""The bad-input corpus: each case builds one bad file or argument list, runs the command line
in-process, and expects exit code 2, one line naming the problem, and nothing written."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from badinput.crafting import (
    fit_tiny_classical,
    fit_tiny_object_classifier,
    legacy_members,
    read_members,
    tiny_image,
    with_arrays,
    with_estimator,
    with_header,
    write_members,
)
from pixlearn.app.cli import app
from pixlearn.data.images import write_image
from pixlearn.models.model_file import save_model

FIXTURES = Path(__file__).resolve().parents[1] / "models" / "fixtures" / "v1"
runner = CliRunner()


@dataclass(frozen=True)
class Case:
    """``build(tmp, model) -> argv``; the command must exit `code` with `fragment` in its output."""

    build: Callable[[Path, Path], list[str]]
    fragment: str
    code: int = 2
    xfail: str | None = None


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_model(fit_tiny_classical("rf", 2), tmp_path_factory.mktemp("m") / "rf.zip")


def _predict_on(make: Callable[[Path], Path]) -> Callable[[Path, Path], list[str]]:
    def build(tmp: Path, model: Path) -> list[str]:
        return ["predict", str(model), str(make(tmp)), "-o", str(tmp / "out")]

    return build


def _npy(array: np.ndarray, name: str = "in.npy") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        np.save(tmp / name, array, allow_pickle=True)
        return tmp / name

    return make


def _raw(data: bytes, name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.tif")
    return tmp / "pipe.tif"


def _tif_with(edit_tags: dict[str, int], compression: str | None = None, bigtiff: bool = False):
    def make(tmp: Path) -> Path:
        import tifffile

        tifffile.imwrite(tmp / "in.tif", np.ones((8, 8), np.uint8), compression=compression, bigtiff=bigtiff)
        with tifffile.TiffFile(tmp / "in.tif", mode="r+b") as tif:
            for tag, value in edit_tags.items():
                tif.pages[0].tags[tag].overwrite(value)
        return tmp / "in.tif"

    return make


def _zarr(shape: tuple[int, ...], dtype: str = "uint8") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        import zarr

        zarr.open_array(str(tmp / "in.zarr"), mode="w", shape=shape, chunks=(64,) * len(shape), dtype=dtype)
        return tmp / "in.zarr"

    return make


def _image(value: float, dtype: str, suffix: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        image = tiny_image().astype(dtype)
        image[3, 4] = value
        return write_image(tmp / f"in{suffix}", image)

    return make


IMAGE_CASES: dict[str, Case] = {
    "fifo input": Case(_predict_on(_fifo), "FIFO"),
    "missing input": Case(_predict_on(lambda t: t / "absent.tif"), "no such file"),
    "unsupported suffix": Case(_predict_on(_raw(b"BM....", "in.bmp")), "pattern matches no images|unsupported"),
    "folder without images": Case(_predict_on(lambda t: (t / "empty").mkdir() or t / "empty"), "holds no images"),
    "garbage tif": Case(_predict_on(_raw(b"not a tiff at all", "in.tif")), "cannot read image"),
    "empty tif": Case(_predict_on(_raw(b"", "in.tif")), "cannot read image"),
    "garbage png": Case(_predict_on(_raw(b"\x89PNG\r\n\x1a\nbroken", "in.png")), "cannot read image"),
    "garbage npy": Case(_predict_on(_raw(b"\x93NUMPY garbage", "in.npy")), "cannot read image"),
    "empty npy": Case(_predict_on(_raw(b"", "in.npy")), "cannot read image"),
    "npy header larger than file": Case(
        _predict_on(_raw(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
                         .ljust(128, b" ")[:127] + b"\n", "in.npy")), "cannot read image"),
    "object npy (pickle)": Case(_predict_on(_npy(np.array([[None, 1], [2, 3]], dtype=object))), "cannot read image"),
    "1-D npy": Case(_predict_on(_npy(np.zeros(16, np.float32))), "not an image"),
    "zero rows": Case(_predict_on(_npy(np.zeros((0, 16), np.float32))), "no pixels"),
    "zero columns": Case(_predict_on(_npy(np.zeros((16, 0), np.float32))), "no pixels"),
    "zero planes": Case(_predict_on(_npy(np.zeros((0, 16, 16), np.float32))), "no pixels"),
    "complex64": Case(_predict_on(_npy(tiny_image().astype(np.complex64))), "complex"),
    "complex128": Case(_predict_on(_npy(tiny_image().astype(np.complex128))), "complex"),
    "structured": Case(_predict_on(_npy(np.zeros((8, 8), [("a", "f4"), ("b", "i2")]))), "structured"),
    "unicode strings": Case(_predict_on(_npy(np.full((8, 8), "x"))), "string"),
    "byte strings": Case(_predict_on(_npy(np.full((8, 8), b"x"))), "byte-string"),
    "datetime": Case(_predict_on(_npy(np.zeros((8, 8), "datetime64[s]"))), "date-time"),
    "two channels for a one-channel model": Case(
        _predict_on(_npy(np.stack([tiny_image()] * 2, -1))), "channel|model takes"),
    "3D stack of 6-pixel planes for a 2D model": Case(_predict_on(_npy(np.stack([tiny_image()[:, :6]] * 5))),
                                                      "2D images"),
    "zarr declaring 2^40 pixels": Case(_predict_on(_zarr((2**20, 2**20))), "more than the limit"),
    "zarr of complex values": Case(_predict_on(_zarr((16, 16), "complex64")), "complex"),
    "zarr with zero size": Case(_predict_on(_zarr((0, 16))), "no pixels"),
    "garbage zarr folder": Case(_predict_on(lambda t: (t / "in.zarr").mkdir() or t / "in.zarr"), "cannot read image"),
    "BigTIFF declaring 10^6 x 10^6": Case(
        _predict_on(_tif_with({"ImageWidth": 10**6, "ImageLength": 10**6}, bigtiff=True)), "more than the limit"),
    "TIFF without strip data": Case(_predict_on(_tif_with({"StripByteCounts": 0})), "no image data"),
    "TIFF declaring 65535^2 deflated (bomb)": Case(
        _predict_on(_tif_with({"ImageWidth": 65535, "ImageLength": 65535}, compression="zlib")), "cannot read"),
    "no empty output folder after a failure": Case(
        _predict_on(_npy(tiny_image().astype(np.complex64), "c.npy")), "complex"),
    "tiny zarr declaring 200000^2": Case(_predict_on(_zarr((200000, 200000))), "memory.*--format zarr"),
}
for _dtype in ("float32", "float64"):
    for _suffix in (".npy", ".tif"):
        for _value, _name in ((np.nan, "NaN"), (np.inf, "+Inf"), (-np.inf, "-Inf")):
            IMAGE_CASES[f"{_name} pixel {_dtype} {_suffix}"] = Case(
                _predict_on(_image(_value, _dtype, _suffix)), "NaN or Inf")
IMAGE_CASES["NaN in a float16 npy"] = Case(_predict_on(_image(np.nan, "float16", ".npy")), "NaN or Inf")


# crafted model files ----------------------------------------------------------------------------


def _model_from(make: Callable[[Path, Path], Path]) -> Callable[[Path, Path], list[str]]:
    def build(tmp: Path, model: Path) -> list[str]:
        np.save(tmp / "in.npy", tiny_image())
        return ["predict", str(make(tmp, model)), str(tmp / "in.npy"), "-o", str(tmp / "out")]

    return build


def _members(edit: Callable[[dict[str, bytes]], object], name: str = "bad.zip", *, legacy: bool = False):
    """A copy of the model with ``edit(members)`` applied; `legacy`: of its schema 1 (skops) form."""
    def make(tmp: Path, model: Path) -> Path:
        members = legacy_members(read_members(model)) if legacy else read_members(model)
        edit(members)
        return write_members(tmp / name, members)

    return make


def _zip_items(extra: list[tuple[str, bytes]]):
    def make(tmp: Path, model: Path) -> Path:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return write_members(tmp / "bad.zip", list(read_members(model).items()) + extra)

    return make


def _patched_zip(offset_in_central: int, value: bytes):
    def make(tmp: Path, model: Path) -> Path:
        data = bytearray(model.read_bytes())
        central = data.find(b"PK\x01\x02")
        data[central + offset_in_central : central + offset_in_central + len(value)] = value
        (tmp / "bad.zip").write_bytes(bytes(data))
        return tmp / "bad.zip"

    return make


def _symlink_member(tmp: Path, model: Path) -> Path:
    with zipfile.ZipFile(tmp / "bad.zip", "w") as zf:
        for name, data in read_members(model).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) if name == "model.json" else 0
            zf.writestr(info, data)
    return tmp / "bad.zip"


def _bomb(tmp: Path, model: Path) -> Path:
    members = read_members(model)
    with zipfile.ZipFile(tmp / "bad.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", members["model.json"])
        with zf.open("thresholds.json", "w", force_zip64=True) as fh:
            for _ in range(72):
                fh.write(b" " * 2**20)
    return tmp / "bad.zip"


def _skops_of(obj_factory: Callable[[], object]):
    def edit(members: dict[str, bytes]) -> None:
        import skops.io

        members["classifier.skops"] = skops.io.dumps(obj_factory())

    return edit


def _function_transformer(func):
    def make():
        from sklearn.preprocessing import FunctionTransformer

        return FunctionTransformer(func=func)

    return make


class _Reduce:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _unet(edit: Callable[[dict], object]):
    def make(tmp: Path, model: Path) -> Path:
        return with_header(FIXTURES / "unet_instances_v1.zip", tmp / "bad.zip", lambda h: edit(h["model"]["unet"]))

    return make


def _weights_of_other_shape(tmp: Path, model: Path) -> Path:
    from safetensors.numpy import load, save

    members = read_members(FIXTURES / "unet_instances_v1.zip")
    state = load(members["weights.safetensors"])
    first = sorted(state)[0]
    state[first] = np.zeros(state[first].shape[:-1] + (state[first].shape[-1] + 1,), state[first].dtype)
    members["weights.safetensors"] = save(state)
    return write_members(tmp / "bad.zip", members)


def _estimator(edit):
    return lambda tmp, model: with_estimator(model, tmp / "bad.zip", edit)


def _header(edit):
    return lambda tmp, model: with_header(model, tmp / "bad.zip", edit)


def _tree(field, index, value):
    from badinput.crafting import edit_tree

    return _estimator(edit_tree(field, index, value))


def _fifo_model(tmp: Path, model: Path) -> Path:
    os.mkfifo(tmp / "m.zip")
    return tmp / "m.zip"


MODEL_CASES: dict[str, Case] = {
    "model tree child beyond the tree": Case(_model_from(_tree("left_child", -1, 10**6)), "child index"),
    "model tree negative child": Case(_model_from(_tree("right_child", -1, -5)), "child"),
    "model tree cycle": Case(_model_from(_tree("left_child", -1, 0)), "child index"),
    "model tree feature beyond": Case(_model_from(_tree("feature", -1, 10**4)), "feature index"),
    "model tree negative feature": Case(_model_from(_tree("feature", -1, -1)), "feature index"),
    "model tree NaN threshold": Case(_model_from(_tree("threshold", -1, np.nan)), "threshold"),
    "model DummyClassifier": Case(_model_from(_members(_skops_of(
        lambda: __import__("sklearn.dummy", fromlist=["x"]).DummyClassifier().fit([[0], [1]], [0, 1])), legacy=True)),
        "a pixlearn model holds"),
    "model posix.system": Case(_model_from(_members(_skops_of(_function_transformer(os.system)), legacy=True)), "not trusted"),
    "model builtins.eval": Case(_model_from(_members(_skops_of(_function_transformer(eval)), legacy=True)), "not trusted"),
    "model pickle renamed to .skops": Case(
        _model_from(_members(lambda m: m.update({"classifier.skops": pickle.dumps(_Reduce())}), legacy=True)), "corrupt"),
    "model garbage skops": Case(
        _model_from(_members(lambda m: m.update({"classifier.skops": b"junk"}), legacy=True)), "corrupt"),
    "model without classifier": Case(_model_from(_members(lambda m: m.pop("classifier.safetensors"))), "without"),
    "legacy model without classifier": Case(
        _model_from(_members(lambda m: m.pop("classifier.skops"), legacy=True)), "without"),
    "skops member in a schema 2 model": Case(_model_from(_members(
        lambda m: m.update({"classifier.skops": m.pop("classifier.safetensors")}))), "without"),
    "model without model.json": Case(_model_from(_members(lambda m: m.pop("model.json"))), "no model.json"),
    "model.json not JSON": Case(_model_from(_members(lambda m: m.update({"model.json": b"{"}))), "not valid JSON"),
    "model.json nesting bomb": Case(
        _model_from(_members(lambda m: m.update({"model.json": b"[" * 100000 + b"]" * 100000}))), "nests"),
    "thresholds.json nesting bomb": Case(
        _model_from(_members(lambda m: m.update({"thresholds.json": b'{"a":' * 50000 + b"1" + b"}" * 50000}))),
        "nests"),
    "thresholds.json a list": Case(
        _model_from(_members(lambda m: m.update({"thresholds.json": b"[]"}))), "JSON object"),
    "model.json a list": Case(_model_from(_members(lambda m: m.update({"model.json": b"[]"}))), "does not describe"),
    "versions a list": Case(_model_from(_header(lambda h: h.update(versions=[1]))), "versions"),
    "versions of numbers": Case(_model_from(_header(lambda h: h.update(versions={"pixlearn": 1}))), "versions"),
    "schema from the future": Case(_model_from(_header(lambda h: h.update(schema_version=99))), "schema_version"),
    "schema a string": Case(_model_from(_header(lambda h: h.update(schema_version="1"))), "schema_version"),
    "unknown kind": Case(_model_from(_header(lambda h: h.update(kind="magic"))), "unknown model kind"),
    "ndim 9": Case(_model_from(_header(lambda h: h["model"].update(ndim=9))), "ndim"),
    "channels 10^9": Case(_model_from(_header(lambda h: h["model"].update(n_channels=10**9))), "n_channels"),
    "one class": Case(_model_from(_header(lambda h: h["model"].update(class_names=["a"]))), "class_names"),
    "halo 10^8": Case(_model_from(_header(lambda h: h["model"].update(halo=[10**8, 1]))), "halo"),
    "features config unknown key": Case(
        _model_from(_header(lambda h: h["model"]["features"].update(magic=1))), "unknown keys"),
    "duplicate model.json": Case(_model_from(_zip_items([("model.json", b"{}")])), "appears twice"),
    "duplicate classifier": Case(_model_from(_zip_items([("classifier.safetensors", b"x")])), "appears twice"),
    "traversal member": Case(_model_from(_zip_items([("../evil.py", b"x")])), "unexpected member"),
    "absolute member": Case(_model_from(_zip_items([("/etc/cron.d/x", b"x")])), "unexpected member"),
    "symlink member": Case(_model_from(_symlink_member), "symbolic link"),
    "encrypted member": Case(_model_from(_patched_zip(8, b"\x01")), "encrypted"),
    "unknown compression": Case(_model_from(_patched_zip(10, b"\x63\x00")), "compression method"),
    "zip bomb": Case(_model_from(_bomb), "implausibly large"),
    "truncated zip": Case(_model_from(lambda t, m: _raw(m.read_bytes()[:200], "bad.zip")(t)), "not a pixlearn"),
    "model path a FIFO": Case(_model_from(_fifo_model), "not a regular file"),
    "missing model": Case(_model_from(lambda t, m: t / "absent.zip"), "no such model"),
    "unet depth 50": Case(_model_from(_unet(lambda u: u.update(depth=50, pool_kernels=[]))), "depth"),
    "unet base channels 10^6": Case(_model_from(_unet(lambda u: u.update(base_channels=10**6))), "base_channels"),
    "unet kernel 99": Case(_model_from(_unet(lambda u: u.update(kernel_size=99))), "kernel_size"),
    "unet 10^5 input channels": Case(_model_from(_unet(lambda u: u.update(in_channels=10**5))), "in_channels"),
    "unet weights of another shape": Case(_model_from(_weights_of_other_shape), "shape"),
    "unet without weights": Case(_model_from(lambda t, m: _members(lambda x: x.pop("weights.safetensors"))(
        t, FIXTURES / "unet_instances_v1.zip")), "without weights"),
    "unet garbage weights": Case(_model_from(lambda t, m: _members(lambda x: x.update(
        {"weights.safetensors": b"\xff" * 64}))(t, FIXTURES / "unet_instances_v1.zip")), "corrupt"),
}


def _tree_attack_cases() -> dict[str, Case]:
    """The attacks of tests/models/test_validate.py, through the command line."""
    from models.test_validate import TREE_ATTACKS

    cases = {}
    for name, (source, edit, fragment) in TREE_ATTACKS.items():
        def make(tmp: Path, model: Path, source=source, edit=edit) -> Path:
            method, k = {"rf": ("rf", 2), "hgb": ("hgb", 2), "hgb3": ("hgb", 3), "svm": ("svm", 2)}[source]
            base = model if source == "rf" else save_model(fit_tiny_classical(method, k), tmp / "base.zip")
            return with_estimator(base, tmp / "bad.zip", edit)

        cases[f"attack {name}"] = Case(_model_from(make), fragment)
    return cases


MODEL_CASES.update(_tree_attack_cases())


def _first_split(arrays: dict[str, np.ndarray]) -> int:
    return int(np.flatnonzero(arrays["tree0.left_child"] >= 0)[0])


def _set_array(name: str, value: object, *, split: bool = True):
    """An edit of the schema 2 arrays: ``arrays[name][first split node] = value`` (or all of it)."""
    def edit(arrays: dict[str, np.ndarray], meta: dict) -> None:
        x = arrays[name].copy()
        if split:
            x[_first_split(arrays)] = value
        else:
            x[...] = value
        arrays[name] = x

    return edit


def _arrays(edit):
    return _model_from(lambda tmp, model: with_arrays(model, tmp / "bad.zip", edit))


#: Attacks on the schema 2 format (the estimator as plain arrays), through the command line.
ARRAY_CASES = {
    "arrays child beyond the tree": Case(_arrays(_set_array("tree0.left_child", 10**6)), "after their parent"),
    "arrays negative child": Case(_arrays(_set_array("tree0.right_child", -7)), "after their parent"),
    "arrays child pointing back": Case(_arrays(_set_array("tree0.left_child", 0)), "after their parent"),
    "arrays feature beyond": Case(_arrays(_set_array("tree0.feature", 10**5)), "splits on feature"),
    "arrays negative feature": Case(_arrays(_set_array("tree0.feature", -3)), "splits on feature"),
    "arrays NaN threshold": Case(_arrays(_set_array("tree0.threshold", np.nan)), "threshold NaN"),
    "arrays NaN value": Case(_arrays(_set_array("tree0.value", np.nan, split=False)), "finite"),
    "arrays value of another shape": Case(
        _arrays(lambda a, m: a.update({"tree0.value": a["tree0.value"][:, :, :1].copy()})), "has shape"),
    "arrays child index as float": Case(
        _arrays(lambda a, m: a.update({"tree0.left_child": a["tree0.left_child"].astype(np.float64)})), "dtype"),
    "arrays missing array": Case(_arrays(lambda a, m: a.pop("tree0.feature")), "is missing"),
    "arrays extra array": Case(_arrays(lambda a, m: a.update({"evil": np.zeros(3)})), "unexpected arrays"),
    "arrays node count lie": Case(_arrays(lambda a, m: m["trees"][0].update(node_count=10**9)), "node_count"),
    "arrays unknown estimator type": Case(_arrays(lambda a, m: m.update(type="FunctionTransformer")), "'type'"),
    "arrays classes lie": Case(_arrays(lambda a, m: m.update(classes=[0, 1, 2])), "has shape"),
    "arrays unknown parameter": Case(_arrays(lambda a, m: m["params"].update(magic=1)), "no parameter"),
    "arrays no trees": Case(_arrays(lambda a, m: m.update(trees=[])), "'trees' is empty"),
    "arrays another format": Case(_arrays(lambda a, m: m.update(format="pickle")), "'format'"),
    "arrays garbage bytes": Case(
        _model_from(_members(lambda m: m.update({"classifier.safetensors": b"junk"}))), "safetensors"),
    "arrays pickle payload": Case(
        _model_from(_members(lambda m: m.update({"classifier.safetensors": pickle.dumps(_Reduce())}))),
        "safetensors"),
    "arrays without their description": Case(_model_from(_header(lambda h: h.pop("estimator"))), "estimator"),
}
MODEL_CASES.update(ARRAY_CASES)


# object classifiers (kind "object-classifier") ---------------------------------------------------


def _object_model(edit: Callable[[dict[str, bytes], dict], object]) -> Callable[[Path, Path], list[str]]:
    """Predict with a copy of a tiny object classifier with ``edit(members, header)`` applied."""
    def build(tmp: Path, model: Path) -> list[str]:
        source = save_model(fit_tiny_object_classifier(), tmp / "objects.zip")
        members = read_members(source)
        source.unlink()
        header = json.loads(members["model.json"])
        edit(members, header)
        members["model.json"] = json.dumps(header).encode()
        np.save(tmp / "in.npy", tiny_image())
        return ["predict", str(write_members(tmp / "bad.zip", members)), str(tmp / "in.npy"), "--labels", str(tmp),
                "-o", str(tmp / "out")]

    return build


def _object_meta(key: str, value: object, section: str | None = None):
    def edit(members: dict[str, bytes], header: dict) -> None:
        (header["model"][section] if section else header["model"])[key] = value

    return _object_model(edit)


def _object_estimator_of_pixels(members: dict[str, bytes], header: dict) -> None:
    from safetensors.numpy import save

    from pixlearn.classical.estimator_arrays import estimator_to_arrays

    header["estimator"], arrays = estimator_to_arrays(fit_tiny_classical("rf", 2).estimator)
    members["classifier.safetensors"] = save(arrays)


OBJECT_CASES: dict[str, Case] = {
    "object model repeated class names": Case(_object_meta("class_names", ["a", "a"]), "distinct"),
    "object model one class": Case(_object_meta("class_names", ["a"]), "class_names"),
    "object model tampered measurement names": Case(_object_meta("feature_names", ["area"]), "feature_names"),
    "object model n_measurements wrong": Case(_object_meta("n_measurements", 3), "n_measurements"),
    "object model ndim 7": Case(_object_meta("ndim", 7), "ndim"),
    "object model huge lbp_points": Case(_object_meta("lbp_points", 10**6, "object_features"), "exceeds the limit"),
    "object model huge ring": Case(_object_meta("ring_px", 10**9, "object_features"), "exceeds the limit"),
    "object model unknown setting": Case(_object_meta("exec", "rm -rf /", "object_features"), "unknown keys"),
    "object model settings not a mapping": Case(_object_meta("object_features", "x"), "object_features"),
    "object model bad classifier settings": Case(_object_meta("classifier", {"method": "magic"}), "classifier"),
    "object model without estimator": Case(_object_model(lambda m, h: m.pop("classifier.safetensors")), "without"),
    "object model pickled estimator": Case(
        _object_model(lambda m, h: m.update({"classifier.safetensors": pickle.dumps(_Reduce())})), "safetensors"),
    "object model estimator of other features": Case(_object_model(_object_estimator_of_pixels), "features"),
    "object model without estimator description": Case(_object_model(lambda m, h: h.pop("estimator")), "without"),
}
MODEL_CASES.update(OBJECT_CASES)


# command-line misuse ----------------------------------------------------------------------------


def _dataset(tmp: Path, labels: np.ndarray | None = None, image: np.ndarray | None = None,
             label_suffix: str = ".tif") -> tuple[Path, Path]:
    (tmp / "images").mkdir(exist_ok=True)
    (tmp / "labels").mkdir(exist_ok=True)
    img = tiny_image() if image is None else image
    lab = (tiny_image() > 0.5).astype(np.uint8) if labels is None else labels
    if (tmp / "images" / "a.npy").exists():
        (tmp / "images" / "a.npy").unlink()
    np.save(tmp / "images" / "a.npy", img)
    if label_suffix == ".npy":
        np.save(tmp / "labels" / "a.npy", lab)
    else:
        write_image(tmp / "labels" / f"a{label_suffix}", lab)
    return tmp / "images", tmp / "labels"


def _train(*extra: str, labels: np.ndarray | None = None, image: np.ndarray | None = None,
           label_suffix: str = ".tif"):
    def build(tmp: Path, model: Path) -> list[str]:
        images, labs = _dataset(tmp, labels, image, label_suffix)
        return ["train", "--images", str(images), "--labels", str(labs), "-o", str(tmp / "out"),
                "--n-estimators", "2", "--sigmas", "1", *extra]

    return build


def _train_to(target: Callable[[Path], Path], *extra: str):
    """``train`` with ``-o target(tmp)`` (the data set made first, so the target may be in it)."""
    def build(tmp: Path, model: Path) -> list[str]:
        argv = _train(*extra)(tmp, model)
        argv[argv.index("-o") + 1] = str(target(tmp))
        return argv

    return build


def _predict_into(output: Callable[[Path], Path], *extra: str):
    """``predict MODEL in/ -o output(tmp)`` with one image ``in/a.npy``."""
    def build(tmp: Path, model: Path) -> list[str]:
        (tmp / "in").mkdir(exist_ok=True)
        np.save(tmp / "in" / "a.npy", tiny_image())
        return ["predict", str(model), str(tmp / "in"), "-o", str(output(tmp)), *extra]

    return build


def _predict_args(*extra: str):
    def build(tmp: Path, model: Path) -> list[str]:
        np.save(tmp / "in.npy", tiny_image())
        return ["predict", str(model), str(tmp / "in.npy"), "-o", str(tmp / "out"), *extra]

    return build


_LAB = (tiny_image() > 0.5).astype(np.int64)
CLI_CASES: dict[str, Case] = {
    "train --time-limit abc (unet)": Case(_train("--method", "unet", "--time-limit", "abc"), "duration"),
    "train --time-limit abc (rf)": Case(_train("--time-limit", "abc"), "duration"),
    "train --time-limit abc (svm)": Case(_train("--method", "svm", "--time-limit", "abc"), "duration"),
    "train --time-limit abc (hgb)": Case(_train("--method", "hgb", "--time-limit", "abc"), "duration"),
    "train --time-limit empty": Case(_train("--time-limit", ""), "duration"),
    "train --sigmas 1e6": Case(_train("--sigmas", "1e6"), "sigma"),
    "train --sigmas 1,1e6": Case(_train("--sigmas", "1,1e6"), "sigma"),
    "train --threads 0": Case(_train("--threads", "0"), "--threads"),
    "train --seed -1": Case(_train("--seed", "-1"), "--seed"),
    "train --epochs 0": Case(_train("--method", "unet", "--epochs", "0"), "--epochs"),
    "train --n-classes 0": Case(_train("--n-classes", "0"), "--n-classes"),
    "train --sigmas abc": Case(_train("--sigmas", "abc"), "abc"),
    "train --sigmas -1": Case(_train("--sigmas", "-1"), "sigmas"),
    "train --sigmas 0": Case(_train("--sigmas", "0"), "sigmas"),
    "train --sigmas nan": Case(_train("--sigmas", "nan"), "sigmas"),
    "train --sigmas decreasing": Case(_train("--sigmas", "2,1"), "increasing"),
    "train --n-estimators 0": Case(_train("--n-estimators", "0"), "n_estimators"),
    "train --n-estimators -3": Case(_train("--n-estimators", "-3"), "n_estimators"),
    "train --n-estimators abc": Case(_train("--n-estimators", "abc"), "Invalid value"),
    "train --method magic": Case(_train("--method", "magic"), "magic"),
    "train --task instances with rf": Case(_train("--task", "instances"), "semantic segmentation only"),
    "train config not a mapping": Case(lambda t, m: (t.joinpath("c.yaml").write_text("- 1\n"),
                                                     _train("--config", str(t / "c.yaml"))(t, m))[1], "mapping"),
    "train config unknown section": Case(lambda t, m: (t.joinpath("c.yaml").write_text("magic: {}\n"),
                                                       _train("--config", str(t / "c.yaml"))(t, m))[1], "unknown"),
    "train config wrong value type": Case(
        lambda t, m: (t.joinpath("c.yaml").write_text("classifier: {n_estimators: many}\n"),
                      _train("--config", str(t / "c.yaml"))(t, m))[1], "n_estimators"),
    "train label 2^31": Case(_train(labels=np.where(_LAB > 0, 2**31, 0).astype(np.int64), label_suffix=".npy"),
                             "exceeds the largest label"),
    "train label 2^31 as uint32 tif": Case(_train(labels=np.where(_LAB > 0, 2**31, 0).astype(np.uint32)),
                                           "exceeds the largest label"),
    "train dense label 10^6": Case(_train(labels=np.where(_LAB > 0, 10**6, 0).astype(np.int32), label_suffix=".npy"),
                                   "not a class"),
    "train label non-integer": Case(_train(labels=_LAB + 0.5, label_suffix=".npy"), "non-integer"),
    "train label NaN": Case(_train(labels=np.where(_LAB > 0, np.nan, 0), label_suffix=".npy"), "NaN or Inf"),
    "train label complex": Case(_train(labels=_LAB.astype(np.complex64), label_suffix=".npy"), "complex"),
    "train label strings": Case(_train(labels=np.full(_LAB.shape, "x"), label_suffix=".npy"), "string"),
    "train label negative": Case(_train(labels=-_LAB, label_suffix=".npy"), "negative"),
    "train label two channels": Case(_train(labels=np.stack([_LAB] * 2, -1), label_suffix=".npy"), "channels|differs"),
    "train label single class": Case(_train(labels=np.ones_like(_LAB), label_suffix=".npy"), "one class|single class"),
    "train labels of another shape": Case(_train(labels=_LAB[:10], label_suffix=".npy"), "shape"),
    "train image NaN": Case(_train(image=np.where(tiny_image() > 0.5, np.nan, 0.1).astype(np.float32)), "NaN"),
    "train image complex": Case(_train(image=tiny_image().astype(np.complex64)), "complex"),
    "train image zero size": Case(_train(image=np.zeros((0, 20), np.float32)), "no pixels"),
    "train --n-classes 1 too few": Case(_train("--n-classes", "1"), "outside"),
    "train -o over a user's folder": Case(
        lambda t, m: ((t / "out").mkdir(), (t / "out" / "thesis.docx").write_text("x"), _train()(t, m))[2],
        "not part of a pixlearn model"),
    "train -o over a user's folder --overwrite": Case(
        lambda t, m: ((t / "out").mkdir(), (t / "out" / "thesis.docx").write_text("x"),
                      _train("--overwrite")(t, m))[2], "not part of a pixlearn model"),
    "train -o = the images folder": Case(_train_to(lambda t: t / "images"), "data folder"),
    "train -o = the images folder --overwrite": Case(_train_to(lambda t: t / "images", "--overwrite"), "data folder"),
    "train -o inside the labels folder": Case(_train_to(lambda t: t / "labels" / "model"), "inside the data folder"),
    "train -o = a user's file": Case(
        _train_to(lambda t: (t / "notes.zip").write_bytes(b"PK\x05\x06" + bytes(18)) and t / "notes.zip"),
        "not a pixlearn model"),
    "train -o = a user's file --overwrite": Case(
        _train_to(lambda t: (t / "notes.txt").write_text("x") and t / "notes.txt", "--overwrite"),
        "not a pixlearn model"),
    "train -o = a pixlearn model without --overwrite": Case(
        _train_to(lambda t: save_model(fit_tiny_classical("rf", 2), t / "old.zip")), "--overwrite"),
    "train -o = a model folder holding a user's file --overwrite": Case(
        _train_to(lambda t: (save_model(fit_tiny_classical("rf", 2), t / "old"),
                             (t / "old" / "notes.txt").write_text("x"))[0], "--overwrite"),
        "not part of a pixlearn model"),
    "train -o under a file": Case(_train_to(lambda t: (t / "f").write_text("x") and t / "f" / "model"), "file"),
    "predict --format bmp": Case(_predict_args("--format", "bmp"), "--format"),
    "predict --tile 0,0": Case(_predict_args("--tile", "0,0"), "tile"),
    "predict --tile -8,8": Case(_predict_args("--tile", "-8,8"), "tile"),
    "predict --tile abc": Case(_predict_args("--tile", "abc"), "abc"),
    "predict --tile 1,2,3,4,5": Case(_predict_args("--tile", "1,2,3,4,5"), "tile"),
    "predict --threads abc": Case(_predict_args("--threads", "abc"), "Invalid value"),
    "predict --dask local:abc": Case(_predict_args("--dask", "local:abc"), "positive number of workers"),
    "predict --dask local:0": Case(_predict_args("--dask", "local:0"), "positive number of workers"),
    "predict no inputs": Case(lambda t, m: ["predict", str(m), "-o", str(t / "out")], "INPUT"),
    "predict -o = the input folder": Case(_predict_into(lambda t: t / "in"), "is the input|contains the input"),
    "predict -o = the input folder --overwrite": Case(
        _predict_into(lambda t: t / "in", "--overwrite"), "contains the input"),
    "predict -o = a parent of the input folder": Case(_predict_into(lambda t: t), "contains the input"),
    "predict -o = an input file": Case(_predict_into(lambda t: t / "in" / "a.npy"), "is the input"),
    "predict -o = an input file (explicit)": Case(
        lambda t, m: _predict_into(lambda t: t / "in" / "a.npy")(t, m)[:2] + [str(t / "in" / "a.npy"), "-o",
                                                                           str(t / "in" / "a.npy")], "is the input"),
    "predict over a user's file at an output path": Case(
        _predict_into(lambda t: (t / "res").mkdir() or (t / "res" / "a.tif").write_text("mine") and t / "res"),
        "not written by pixlearn"),
    "predict over a user's file at an output path --overwrite": Case(
        _predict_into(lambda t: (t / "res").mkdir() or (t / "res" / "a.tif").write_text("mine") and t / "res",
                      "--overwrite"), "not written by pixlearn"),
    "predict over a user's file at a probabilities path": Case(
        _predict_into(lambda t: (t / "res" / "probabilities").mkdir(parents=True)
                      or (t / "res" / "probabilities" / "a.tif").write_text("mine") and t / "res",
                      "--probabilities", "--overwrite"), "not written by pixlearn"),
    "predict with a manifest that is not one": Case(
        _predict_into(lambda t: (t / "res").mkdir() or (t / "res" / "manifest.jsonl").write_text("x\ny\n")
                      and t / "res"), "manifest"),
    "predict --tile 0": Case(_predict_args("--tile", "0"), "tile"),
    "predict --threads 0": Case(_predict_args("--threads", "0"), "--threads"),
    "evaluate --kind magic": Case(lambda t, m: ["evaluate", "--pred", str(t), "--truth", str(t), "--kind", "magic",
                                                "-o", str(t / "out")], "--kind"),
    "info of a FIFO": Case(lambda t, m: ["info", str(_fifo_model(t, m))], "not a regular file"),
    "info of a duplicate-member zip": Case(
        lambda t, m: ["info", str(_zip_items([("model.json", b"{}")])(t, m))], "appears twice"),
}

CASES = {**IMAGE_CASES, **MODEL_CASES, **CLI_CASES}


def _params():
    for name in sorted(CASES):
        case = CASES[name]
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail, run="200000" not in name)] if case.xfail else []
        yield pytest.param(name, marks=marks, id=name)


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", list(_params()))
def test_bad_input_is_refused(tmp_path, model, name):
    case = CASES[name]
    work = tmp_path / "work"
    work.mkdir()
    argv = case.build(work, model)
    before = _snapshot(work)
    out = work / "out"
    out_existed = out.exists()
    result = runner.invoke(app, argv)
    output = result.output  # click mixes stderr in
    assert result.exit_code == case.code, f"{output}\n{result.exception!r}"
    error_lines = [line for line in output.strip().splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 or case.code == 2 and "Usage" in output, output
    import re

    assert re.search(case.fragment, output), output
    # nothing written, not even an empty output folder; a folder that was there is unchanged
    assert out_existed or not out.exists(), "an output (folder) was left behind"
    assert _snapshot(work) == before, "files changed, appeared or were lost"
    assert not [p for p in work.rglob("*.partial")], "a temporary file was left behind"


def test_corpus_size():
    assert len(CASES) >= 150, len(CASES)


def test_json_of_header_still_valid(model):
    # sanity: the base model of every crafted case loads and has a JSON header
    header = json.loads(read_members(model)["model.json"])
    assert header["format"] == "pixlearn-model"
