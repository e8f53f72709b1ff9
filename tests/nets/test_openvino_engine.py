"""The OpenVINO engine (:mod:`pixlearn.nets.openvino_engine`) and its use by NetworkModel."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from engine_nets import odd_blocks, tiny_cfg, tiny_net
from pixlearn.nets import UNet, UNetConfig, network_probe, onnx_engine
from pixlearn.nets.autoconfig import LEAN_CPU
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.network_probe import CACHE_MODE, network_candidates, network_key, probe_batch
from pixlearn.nets.onnx_engine import OnnxEngine, build_engine
from pixlearn.nets.openvino_engine import make_openvino_session, openvino_version
from pixlearn.nets.precision import BF16_TOLERANCE, FP32_TOLERANCE, PrecisionPath, named_path
from pixlearn.nets.precision_probe import OPENVINO_PATHS, cache_file, write_timings
from pixlearn.nets.unet import size_divisor

pytest.importorskip("openvino")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = "fp32+channels_last"


_cfg, _net, _blocks = tiny_cfg, tiny_net, odd_blocks


def _reference(net: UNet, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(np.ascontiguousarray(x))).numpy()


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("dtype", "relative"), [("fp32", False), ("bf16", True)])
def test_engine_equals_the_network_on_any_size(ndim, dtype, relative):
    cfg = _cfg(ndim, out_channels=3)
    net = _net(cfg)
    engine = build_engine(net, ndim, 1, size_divisor(cfg), runtime="openvino", dtype=dtype)
    assert isinstance(engine, OnnxEngine) and engine.runtime == "openvino"
    for seed, batch in ((1, 2), (2, 1)):  # dynamic batch and spatial axes
        x = np.moveaxis(_blocks(ndim, seed)[:batch], -1, 1)
        expected = _reference(net, x)
        result = engine(x)
        assert result.shape == expected.shape and result.dtype == np.float32
        # raw logits: bf16 is held to 1% of their range (probabilities to BF16_TOLERANCE, below)
        tolerance = 1e-2 * float(np.abs(expected).max()) if relative else FP32_TOLERANCE
        np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_the_lean_cpu_network_runs_in_the_outside_engines(runtime):
    pytest.importorskip(runtime)
    cfg = UNetConfig(ndim=2, in_channels=1, out_channels=3, depth=2, base_channels=4, stem_factor=2, **LEAN_CPU)
    net = _net(cfg)
    engine = build_engine(net, 2, 1, size_divisor(cfg), runtime=runtime)  # nearest enlargement exports
    assert isinstance(engine, OnnxEngine)
    x = np.moveaxis(_blocks(2), -1, 1)
    np.testing.assert_allclose(engine(x), _reference(net, x), rtol=0, atol=FP32_TOLERANCE)


def test_each_result_is_an_array_of_its_own():
    cfg = _cfg(2)
    net = _net(cfg)
    session = make_openvino_session(onnx_engine.export_onnx(net, 2, 1, size_divisor(cfg)), 1, "fp32")
    a, b = (np.moveaxis(_blocks(2, seed), -1, 1)[:, :, :16, :16] for seed in (1, 2))
    first = session.run(["y"], {"x": np.ascontiguousarray(a)})[0]
    kept = first.copy()
    session.run(["y"], {"x": np.ascontiguousarray(b)})  # OpenVINO reuses its output memory
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(first, _reference(net, a[:, :, :16, :16]), rtol=0, atol=FP32_TOLERANCE)


def _openvino_model(monkeypatch, tmp_path, cfg, net, task, blocks, path) -> NetworkModel:
    """A model with ``precision="auto"`` whose cached timings of `blocks`' shape favour `path`."""
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(network_probe, "cpu_info", lambda: ("a CPU", ("avx512_bf16",)))
    key = network_key(cfg.to_dict(), probe_batch((blocks.shape[0], blocks.shape[-1]) + blocks.shape[1:-1], size_divisor(cfg)))
    seconds = {BASE: 1.0, path: 0.5}
    write_timings(cache_file(key, CACHE_MODE), key, CACHE_MODE, {k: [v] * 2 for k, v in seconds.items()})
    return NetworkModel(cfg, task, net, device="cpu", precision="auto")


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", OPENVINO_PATHS)
def test_openvino_predictions_match_torch_fp32(monkeypatch, tmp_path, ndim, name):
    cfg = _cfg(ndim)
    net = _net(cfg)
    blocks = _blocks(ndim)
    reference = NetworkModel(cfg, "semantic", net, device="cpu").predict_batch(blocks)
    model = _openvino_model(monkeypatch, tmp_path, cfg, net, "semantic", blocks, name)
    result = model.predict_batch(blocks)
    assert (model.precision_path.name, model.precision_path.source) == (name, "cached")
    assert model.precision_path.engine == "openvino"
    assert result.shape == reference.shape and result.dtype == np.float32
    tolerance = FP32_TOLERANCE if name.startswith("fp32") else BF16_TOLERANCE
    np.testing.assert_allclose(result, reference, rtol=0, atol=tolerance)


def test_a_failed_session_falls_back_to_torch(monkeypatch, tmp_path, caplog):
    cfg = _cfg(2)
    net = _net(cfg)
    blocks = _blocks(2)
    reference = NetworkModel(cfg, "instances", net, device="cpu").predict_batch(blocks)

    def fail(*args):
        raise RuntimeError("Exception from src/plugins/intel_cpu: unsupported layer")

    monkeypatch.setattr(onnx_engine, "make_openvino_session", fail)
    model = _openvino_model(monkeypatch, tmp_path, cfg, net, "instances", blocks, "fp32+openvino")
    with caplog.at_level(logging.WARNING):
        result = model.predict_batch(blocks)
    assert "unsupported layer" in caplog.text and "openvino" in caplog.text
    path = model.precision_path
    assert (path.name, path.engine, path.source) == ("fp32+channels_last", "torch", "fallback")
    np.testing.assert_allclose(result, reference, rtol=0, atol=FP32_TOLERANCE)


def test_openvino_paths_are_candidates_only_where_it_imports(monkeypatch):
    names, baseline = network_candidates(2, flags=("avx512_bf16",), onnxruntime=False, openvino=True)
    assert baseline == BASE and set(OPENVINO_PATHS) <= set(names)
    names = network_candidates(2, flags=("avx2",), onnxruntime=False, openvino=True)[0]
    assert "fp32+openvino" in names and "bf16+openvino" not in names  # no native bf16
    assert openvino_version() is not None
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    assert openvino_version() is None
    assert network_key({"depth": 2}, (1, 1, 16, 16))["openvino"] is None
    assert build_engine(_net(_cfg(2)), 2, 1, (4, 4), runtime="openvino") is None


def test_the_paths_name_their_engine_and_refuse_what_it_cannot_run():
    assert named_path("bf16+openvino", "measured") == PrecisionPath("bf16", False, "measured", engine="openvino")
    assert PrecisionPath("fp32", False, "cached", engine="openvino").name == "fp32+openvino"
    with pytest.raises(ValueError, match="contiguous"):
        PrecisionPath("bf16", True, "forced", engine="openvino")
    with pytest.raises(ValueError, match="onnxruntime runs fp32"):
        PrecisionPath("bf16", False, "forced", engine="onnxruntime")
    with pytest.raises(ValueError, match="runtime"):
        build_engine(_net(_cfg(2)), 2, 1, (4, 4), runtime="onnxruntime", dtype="bf16")


def test_a_network_that_cannot_be_exported_warns_once_and_is_measured_in_torch(monkeypatch, caplog):
    def fail(*args):
        raise RuntimeError("Exporting the operator 'aten::imaginary' to ONNX is not supported")

    monkeypatch.setattr(network_probe, "export_onnx", fail)
    monkeypatch.setattr(onnx_engine, "export_onnx", fail)
    cfg = _cfg(2)
    with caplog.at_level(logging.WARNING):
        steps = network_probe.network_steps(_net(cfg), 2, (1, 1, 16, 16), size_divisor(cfg),
                                            (BASE, "fp32+onnxruntime", *OPENVINO_PATHS))
    assert set(steps) == {BASE}
    assert caplog.text.count("aten::imaginary") == 1 and "onnxruntime and openvino not measured" in caplog.text
