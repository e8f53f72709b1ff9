"""bioimage.io packages: export passes bioimageio's format validation and model test offline; import round trip.

Every test here blocks network connections (a socket guard) and points bioimageio's cache to a
temporary folder, so that a package that needs the network fails instead of fetching.
"""

from __future__ import annotations

import socket
import zipfile

import numpy as np
import pytest

pytest.importorskip("bioimageio.core", reason="needs the exchange extra: pip install -e '.[exchange]'")
pytest.importorskip("onnxruntime", reason="needs the exchange extra: pip install -e '.[exchange]'")
torch = pytest.importorskip("torch")

from pixlearn.data.normalize import NormalizeConfig  # noqa: E402
from pixlearn.errors import ModelFileError, PixlearnError  # noqa: E402
from pixlearn.models.bioimageio_model import BioimageioModel, load_bioimageio  # noqa: E402
from pixlearn.models.export_bioimageio import axis_sizes, export_bioimageio, synthetic_test_image  # noqa: E402
from pixlearn.nets.model import NetworkModel  # noqa: E402
from pixlearn.nets.unet import UNetConfig  # noqa: E402
from pixlearn.predict import apply_model  # noqa: E402

OUTPUTS = {"semantic": 3, "instances": 2, "restore": 1}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network: connections other than to a Unix socket fail; bioimageio's cache is private."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        raise OSError(f"test is offline: connection to {address!r} refused")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    from bioimageio.spec import settings

    monkeypatch.setattr(settings, "cache_path", tmp_path / "bioimageio-cache")
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "bioimageio-cache"))


def tiny_model(task: str, ndim: int, normalization: NormalizeConfig | None = None) -> NetworkModel:
    """An untrained U-Net of depth 1 with 4 base channels; fixed seed, random batch-norm statistics."""
    torch.manual_seed(7)
    model = NetworkModel(UNetConfig(ndim=ndim, depth=1, base_channels=4, out_channels=OUTPUTS[task]), task,
                         normalization=normalization, device="cpu",
                         class_names=("background", "cell", "border") if task == "semantic" else (),
                         thresholds={"prob_thresh": 0.45, "seed_thresh": 0.55} if task == "instances" else None)
    with torch.no_grad():  # non-trivial running statistics so that batch norms matter
        for module in model.net.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("task", ["semantic", "instances", "restore"])
def test_exported_package_passes_bioimageio_validation_and_test(tmp_path, task, ndim, one_torch_thread):
    from bioimageio.core import test_model
    from bioimageio.spec import load_model_description

    package = export_bioimageio(tiny_model(task, ndim), tmp_path / "model.zip", authors=["Ada Lovelace"],
                                training_data="synthetic discs", license="MIT")
    descr = load_model_description(package, perform_io_checks=True)  # `bioimageio validate-format`
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    assert {"pytorch_state_dict", "torchscript", "onnx"} <= {f for f, w in descr.weights if w is not None}
    assert [str(a.name) for a in descr.authors] == ["Ada Lovelace"]
    summary = test_model(package)  # `bioimageio test`: every weight format reproduces the test output
    assert summary.status == "passed", summary.format()
    tested = {d.loc[1] for d in summary.details if len(d.loc) > 1 and d.loc[0] == "weights"}
    assert tested == {"pytorch_state_dict", "torchscript", "onnx"}
    with zipfile.ZipFile(package) as zf:
        readme = zf.read("README.md").decode()
        assert "pixlearn_unet.py" in zf.namelist()
    assert "## Validation" in readme and "synthetic discs" in readme and "MIT" in readme
    if task == "instances":
        assert "foreground > 0.45" in readme and "distance > 0.55" in readme


def test_sizes_respect_divisor_and_halo():
    assert axis_sizes((2, 4), (10, 12)) == [(22, 2), (28, 4)]
    for (m, s), h in zip(axis_sizes((2, 4), (10, 12)), (10, 12)):
        assert m % s == 0 and m > 2 * h


@pytest.mark.parametrize("weight_format", ["pytorch_state_dict", "onnx"])
@pytest.mark.parametrize(("task", "ndim"), [("semantic", 2), ("instances", 2), ("restore", 2), ("semantic", 3)])
def test_round_trip_predictions_equal_pixlearn(tmp_path, task, ndim, weight_format, one_torch_thread):
    model = tiny_model(task, ndim)
    package = export_bioimageio(model, tmp_path / "model.zip", authors=["A"])
    loaded = load_bioimageio(package, weight_format=weight_format, device="cpu")
    assert isinstance(loaded, NetworkModel if weight_format == "pytorch_state_dict" else BioimageioModel)
    assert (loaded.task, loaded.ndim, loaded.n_channels, loaded.n_outputs) == (task, ndim, 1, OUTPUTS[task])
    assert loaded.normalization == model.normalization
    shape = (24, 30, 28) if ndim == 3 else (48, 40)  # sizes >= the package's minimum (22), one not a valid size
    image = synthetic_test_image(shape, 1, seed=3)
    expected, expected_probs = apply_model(model, image, return_probabilities=True)
    got, got_probs = apply_model(loaded, image, return_probabilities=True)
    # same weights; the state dict runs the same torch code (exact), ONNX another runtime's kernels (float rounding)
    np.testing.assert_allclose(got_probs, expected_probs, rtol=1e-5, atol=1e-5)
    if task == "restore":
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)  # in raw units (range ~1000)
    else:
        np.testing.assert_array_equal(got, expected)


def test_fixed_normalisation_round_trip(tmp_path, one_torch_thread):
    from bioimageio.core import test_model

    model = tiny_model("restore", 2, NormalizeConfig(mode="fixed", low=10.0, high=900.0))
    package = export_bioimageio(model, tmp_path / "model.zip", authors=["A"])
    assert test_model(package).status == "passed"
    loaded = load_bioimageio(package, weight_format="onnx")
    assert loaded.normalization.mode == "fixed"
    np.testing.assert_allclose([loaded.normalization.low, loaded.normalization.high], [10.0, 900.0], rtol=1e-6)
    image = synthetic_test_image((22, 26), 1, seed=1)
    np.testing.assert_allclose(apply_model(loaded, image), apply_model(model, image), rtol=1e-4, atol=1e-3)


def test_arbitrary_architecture_is_refused(tmp_path):
    from bioimageio.spec.model import v0_5 as bm

    package = _foreign_package(tmp_path, with_onnx=False)
    with pytest.raises(ModelFileError, match="arbitrary Python") as info:
        load_bioimageio(package)
    assert "\n" not in str(info.value)
    assert bm  # the spec module built the package


def test_classical_model_is_not_exported(tmp_path):
    class Classical:
        kind = "classical"

    with pytest.raises(PixlearnError, match="network models only"):
        export_bioimageio(Classical(), tmp_path / "m.zip", authors=["A"])


def test_not_a_package_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("rdf.yaml", "type: model\nformat_version: 0.5.4\nname: x\n")
    with pytest.raises(ModelFileError):
        load_bioimageio(bad)


def test_package_made_elsewhere_runs(tmp_path):
    """A package that bioimageio.spec builds around a small non-pixlearn ONNX model (3x3 mean, then sigmoid)."""
    package = _foreign_package(tmp_path, with_onnx=True)
    loaded = load_bioimageio(package, task="restore")
    assert isinstance(loaded, BioimageioModel) and loaded.normalization.mode == "percentile"
    image = synthetic_test_image((20, 21), 1, seed=5)
    low, high = np.percentile(image, [1.0, 99.0])
    normalised = (image[..., 0] - low) / (high - low)
    from scipy import ndimage

    mean = ndimage.uniform_filter(normalised, 3, mode="constant")
    expected = 1.0 / (1.0 + np.exp(-mean))
    raw = apply_model(loaded, image, return_probabilities=True)[1][..., 0]
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-5)


def _foreign_package(tmp_path, *, with_onnx: bool):
    """Build a bioimage.io package from a torch 3x3 mean filter with the spec's Python descriptions."""
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as bm

    src = tmp_path / "src"
    src.mkdir()
    (src / "arch.py").write_text(
        "import torch\n\nclass Mean(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)\n"
        "        torch.nn.init.constant_(self.conv.weight, 1.0 / 9.0)\n\n"
        "    def forward(self, x):\n        return self.conv(x)\n")
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    torch.nn.init.constant_(conv.weight, 1.0 / 9.0)
    net = torch.nn.Sequential()
    net.add_module("conv", conv)
    torch.save({"conv.weight": conv.weight.detach()}, src / "weights.pt")
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32) * 100
    low, high = np.percentile(x, [1.0, 99.0])
    with torch.no_grad():
        y = torch.sigmoid(conv(torch.from_numpy((x - low) / (high - low + 1e-6)).float())).numpy()
    np.save(src / "in.npy", x)
    np.save(src / "out.npy", y)
    (src / "README.md").write_text("# mean filter\n")
    version = bm.Version(torch.__version__.split("+")[0])
    weights = {"pytorch_state_dict": bm.PytorchStateDictWeightsDescr(
        source=src / "weights.pt", pytorch_version=version,
        architecture=bm.ArchitectureFromFileDescr(source=src / "arch.py", callable=bm.Identifier("Mean")))}
    if with_onnx:
        with torch.no_grad():
            torch.onnx.export(net, (torch.from_numpy(x),), str(src / "w.onnx"), dynamo=False, input_names=["raw"],
                              output_names=["mean"], opset_version=17,
                              dynamic_axes={"raw": {0: "b", 2: "y", 3: "x"}, "mean": {0: "b", 2: "y", 3: "x"}})
        weights["onnx"] = bm.OnnxWeightsDescr(source=src / "w.onnx", opset_version=17, parent="pytorch_state_dict")
    space = [bm.SpaceInputAxis(id=bm.AxisId(a), size=bm.ParameterizedSize(min=8, step=1)) for a in "yx"]
    descr = bm.ModelDescr(
        name="mean filter", description="a 3x3 mean", authors=[bm.Author(name="Someone Else")],
        cite=[bm.CiteEntry(text="none", doi=bm.Doi("10.1000/182"))], license=bm.LicenseId("MIT"),
        documentation=bm.FileDescr(source=src / "README.md"),
        inputs=[bm.InputTensorDescr(
            id=bm.TensorId("raw"), axes=[bm.BatchAxis(), bm.ChannelAxis(channel_names=[bm.Identifier("c")]), *space],
            test_tensor=bm.FileDescr(source=src / "in.npy"),
            preprocessing=[bm.ScaleRangeDescr(kwargs=bm.ScaleRangeKwargs(
                axes=(bm.AxisId("y"), bm.AxisId("x")), min_percentile=1.0, max_percentile=99.0))])],
        outputs=[bm.OutputTensorDescr(
            id=bm.TensorId("mean"), axes=[bm.BatchAxis(), bm.ChannelAxis(channel_names=[bm.Identifier("m")]),
                                          *[bm.SpaceOutputAxis(id=bm.AxisId(a), size=bm.SizeReference(
                                              tensor_id=bm.TensorId("raw"), axis_id=bm.AxisId(a))) for a in "yx"]],
            test_tensor=bm.FileDescr(source=src / "out.npy"), postprocessing=[bm.SigmoidDescr()])],
        weights=bm.WeightsDescr(**weights),
    )
    return save_bioimageio_package(descr, output_path=tmp_path / "foreign.zip")
