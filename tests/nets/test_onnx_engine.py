"""The onnxruntime engine (:mod:`pixlearn.nets.onnx_engine`) and its use by NetworkModel."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from engine_nets import odd_blocks, tiny_cfg, tiny_net
from pixlearn.nets import network_probe, onnx_engine
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.network_probe import CACHE_MODE, network_key, probe_batch
from pixlearn.nets.onnx_engine import OnnxEngine, build_engine
from pixlearn.nets.precision import FP32_TOLERANCE
from pixlearn.nets.precision_probe import ONNX_PATH, cache_file, write_timings
from pixlearn.nets.unet import size_divisor

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ORT_WINS = {"fp32+channels_last": 1.0, "fp32": 1.0, ONNX_PATH: 0.5}


_cfg, _net, _blocks = tiny_cfg, tiny_net, odd_blocks


def _ort_model(monkeypatch, tmp_path, cfg, net, task, blocks) -> NetworkModel:
    """A model with ``precision="auto"`` whose cached timings of `blocks`' shape favour onnxruntime."""
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path))
    key = network_key(cfg.to_dict(), probe_batch((blocks.shape[0], blocks.shape[-1]) + blocks.shape[1:-1], size_divisor(cfg)))
    seconds = {k: v for k, v in ORT_WINS.items() if cfg.ndim == 2 or k != "fp32"}
    write_timings(cache_file(key, CACHE_MODE), key, CACHE_MODE, {k: [v] * 2 for k, v in seconds.items()})
    return NetworkModel(cfg, task, net, device="cpu", precision="auto")


@pytest.mark.parametrize("ndim", [2, 3])
def test_engine_equals_the_network_on_any_size(ndim):
    cfg = _cfg(ndim, out_channels=3)
    net = _net(cfg)
    engine = build_engine(net, ndim, 1, size_divisor(cfg))
    assert isinstance(engine, OnnxEngine) and engine.threads == torch.get_num_threads()
    for seed, batch in ((1, 2), (2, 1)):  # dynamic batch and spatial axes
        x = np.moveaxis(_blocks(ndim, seed)[:batch], -1, 1)
        with torch.inference_mode():
            expected = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        result = engine(x)
        assert result.shape == expected.shape and result.dtype == np.float32
        np.testing.assert_allclose(result, expected, rtol=0, atol=FP32_TOLERANCE)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("task", ["semantic", "instances"])
def test_onnxruntime_predictions_equal_torch_fp32(monkeypatch, tmp_path, ndim, task):
    cfg = _cfg(ndim)
    net = _net(cfg)
    blocks = _blocks(ndim)
    reference = NetworkModel(cfg, task, net, device="cpu").predict_batch(blocks)
    model = _ort_model(monkeypatch, tmp_path, cfg, net, task, blocks)
    result = model.predict_batch(blocks)
    assert (model.precision_path.name, model.precision_path.source) == (ONNX_PATH, "cached")
    assert isinstance(model._fast[1], OnnxEngine)
    assert result.shape == reference.shape and result.dtype == np.float32
    np.testing.assert_allclose(result, reference, rtol=0, atol=FP32_TOLERANCE)
    np.testing.assert_allclose(model.predict_batch(blocks[:1]), reference[:1], rtol=0, atol=FP32_TOLERANCE)


def test_the_engine_is_rebuilt_when_the_weights_change(monkeypatch, tmp_path):
    cfg = _cfg(2)
    net = _net(cfg)
    blocks = _blocks(2)
    model = _ort_model(monkeypatch, tmp_path, cfg, net, "semantic", blocks)
    before = model.predict_batch(blocks)
    engine = model._fast[1]
    model.predict_batch(blocks)
    assert model._fast[1] is engine  # cached while nothing changes
    net.load_state_dict(_net(cfg, seed=5).state_dict())
    after = model.predict_batch(blocks)
    assert model._fast[1] is not engine and not np.allclose(after, before)
    expected = NetworkModel(cfg, "semantic", net, device="cpu").predict_batch(blocks)
    np.testing.assert_allclose(after, expected, rtol=0, atol=FP32_TOLERANCE)


def test_a_failed_export_falls_back_to_torch(monkeypatch, tmp_path, caplog):
    cfg = _cfg(2)
    net = _net(cfg)
    blocks = _blocks(2)
    reference = NetworkModel(cfg, "semantic", net, device="cpu").predict_batch(blocks)

    def fail(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::imaginary' to ONNX is not supported")

    monkeypatch.setattr(onnx_engine, "export_onnx", fail)
    model = _ort_model(monkeypatch, tmp_path, cfg, net, "semantic", blocks)
    with caplog.at_level(logging.WARNING):
        result = model.predict_batch(blocks)
    assert "aten::imaginary" in caplog.text and "predicting with torch" in caplog.text
    path = model.precision_path
    assert (path.name, path.engine, path.source) == ("fp32+channels_last", "torch", "fallback")
    assert path.record()["precision_source"] == "fallback"
    np.testing.assert_allclose(result, reference, rtol=0, atol=FP32_TOLERANCE)


def test_a_failed_run_falls_back_to_torch(monkeypatch, tmp_path, caplog):
    cfg = _cfg(2)
    net = _net(cfg)
    blocks = _blocks(2)
    reference = NetworkModel(cfg, "instances", net, device="cpu").predict_batch(blocks)
    model = _ort_model(monkeypatch, tmp_path, cfg, net, "instances", blocks)

    def fail(self, x):
        raise RuntimeError("onnxruntime: invalid dimensions")

    monkeypatch.setattr(OnnxEngine, "__call__", fail)
    with caplog.at_level(logging.WARNING):
        result = model.predict_batch(blocks)
    assert "invalid dimensions" in caplog.text and model.precision_path.source == "fallback"
    np.testing.assert_allclose(result, reference, rtol=0, atol=FP32_TOLERANCE)


def test_a_failed_engine_is_left_out_of_the_measurement(monkeypatch, caplog):
    monkeypatch.setattr(onnx_engine, "make_session", lambda model, threads: 1 / 0)
    cfg = _cfg(2)
    steps = network_probe.network_steps(_net(cfg), 2, (1, 1, 16, 16), size_divisor(cfg),
                                        ("fp32+channels_last", ONNX_PATH))
    assert set(steps) == {"fp32+channels_last"} and "ZeroDivisionError" in caplog.text
    steps["fp32+channels_last"]()  # the torch step runs
    monkeypatch.undo()

    def fail(self, x):
        raise RuntimeError("onnxruntime: invalid dimensions")

    monkeypatch.setattr(OnnxEngine, "__call__", fail)
    steps = network_probe.network_steps(_net(cfg), 2, (1, 1, 16, 16), size_divisor(cfg), (ONNX_PATH,))
    assert steps == {} and "invalid dimensions" in caplog.text
