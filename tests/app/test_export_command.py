"""``pixlearn export`` (pixlearn.app.export) through typer's CliRunner, registered as cli.py will."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("bioimageio.core", reason="needs the exchange extra: pip install -e '.[exchange]'")
torch = pytest.importorskip("torch")

from pixlearn.app.export import export  # noqa: E402
from pixlearn.errors import PixlearnError  # noqa: E402
from pixlearn.models.model_file import save_model  # noqa: E402
from pixlearn.nets.model import NetworkModel  # noqa: E402
from pixlearn.nets.unet import UNetConfig  # noqa: E402

app = typer.Typer()
app.command()(export)
app.command("noop")(lambda: None)  # two commands: typer then expects the command name, as in cli.py
runner = CliRunner()


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = NetworkModel(UNetConfig(ndim=2, depth=1, base_channels=4, out_channels=2), "semantic", device="cpu")
    return save_model(model, tmp_path / "model.zip")


def test_export_bioimageio_and_onnx(tmp_path, model_file, one_torch_thread):
    import onnxruntime

    result = runner.invoke(app, ["export", str(model_file), "-o", str(tmp_path / "pkg.zip"), "--author", "Ada"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pkg.zip").is_file() and "wrote" in result.output
    result = runner.invoke(app, ["export", str(model_file), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.zeros((1, 1, 22, 24), np.float32)})[0]
    assert out.shape == (1, 2, 22, 24)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)  # softmax inside the graph


def test_export_without_author_is_a_pixlearn_error(tmp_path, model_file):
    result = runner.invoke(app, ["export", str(model_file), "-o", str(tmp_path / "pkg.zip")])
    assert isinstance(result.exception, PixlearnError)
    assert "author" in str(result.exception) and str(model_file) in str(result.exception)
    assert not (tmp_path / "pkg.zip").exists()


def test_missing_model_is_a_pixlearn_error(tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path / "nope"), "-o", str(tmp_path / "x.zip"), "--author", "A"])
    assert isinstance(result.exception, PixlearnError) and "no such model" in str(result.exception)
