"""The prediction path measured on the network itself (:mod:`pixlearn.nets.network_probe`).

Every timing here comes from a fake clock, a fake measurement or is written by the test.
"""

from __future__ import annotations

import sys

import pytest

from pixlearn.nets import network_probe
from pixlearn.nets.network_probe import (
    CACHE_MODE,
    detect_network_timings,
    network_candidates,
    network_key,
    resolve_network_path,
)
from pixlearn.nets.onnx_engine import onnxruntime_version
from pixlearn.nets.precision import choose_inference_path
from pixlearn.nets.precision_probe import ONNX_PATH, cache_file, measure_paths

BASE = "fp32+channels_last"
ARCH = {"ndim": 2, "depth": 4, "base_channels": 16}
BATCH = (4, 1, 256, 256)
# seconds per batch of the 16..256-channel U-Net of benchmarks/apply.py on an AVX-512 machine
BENCH = {"fp32+channels_last": 0.310, "fp32": 0.33, "bf16+channels_last": 0.19, "bf16": 0.30, ONNX_PATH: 0.202}
TINY = {"fp32+channels_last": 0.0107, "fp32": 0.011, "bf16+channels_last": 0.0108, "bf16": 0.012, ONNX_PATH: 0.0133}


def _samples(seconds, rounds=3):
    return {name: [t] * rounds for name, t in seconds.items()}


class FakeMachine:
    """A clock that advances only when a step runs, by that path's seconds."""

    def __init__(self, seconds):
        self.seconds, self.now, self.runs = seconds, 0.0, []

    def clock(self):
        return self.now

    def prepare(self, mode, path):
        def step():
            self.runs.append(path)
            self.now += self.seconds[path]

        return step


# ------------------------------------------------------------------------------ the decision


def test_onnxruntime_is_chosen_where_it_is_faster_and_beats_a_near_tie_of_bf16():
    assert choose_inference_path(_samples(BENCH), baseline=BASE) == ONNX_PATH
    without_ort = {k: v for k, v in BENCH.items() if k != ONNX_PATH}
    assert choose_inference_path(_samples(without_ort), baseline=BASE) == "bf16+channels_last"
    assert choose_inference_path(_samples({**BENCH, "bf16+channels_last": 0.15}), baseline=BASE) == "bf16+channels_last"


def test_the_baseline_stays_on_ties_and_noise():
    assert choose_inference_path(_samples(TINY), baseline=BASE) == BASE  # ORT loses on the probe-sized net
    tie = {BASE: [1.0, 1.0], ONNX_PATH: [0.95, 0.93]}
    assert choose_inference_path(tie, baseline=BASE) == BASE
    noisy = {BASE: [1.0, 1.2], ONNX_PATH: [0.6, 0.95]}  # faster once, not in every round
    assert choose_inference_path(noisy, baseline=BASE) == BASE
    with pytest.raises(ValueError, match="fp32"):
        choose_inference_path(_samples(BENCH), baseline="bf16")


def test_candidates_follow_native_bf16_and_onnxruntime():
    names, baseline = network_candidates(2, flags=("avx512_bf16",), onnxruntime=True)
    assert baseline == BASE and set(names) == set(BENCH)
    assert network_candidates(2, flags=("avx2",), onnxruntime=False)[0] == (BASE, "fp32")


def test_no_onnxruntime_candidate_when_it_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    assert onnxruntime_version() is None
    monkeypatch.setattr(network_probe, "cpu_info", lambda: ("a CPU", ("avx512_bf16",)))
    seen = []

    def detect(paths):
        seen.extend(paths)
        return _samples({k: v for k, v in BENCH.items() if k in paths}), "measured"

    path = resolve_network_path("auto", "cpu", ndim=2, detect=detect)
    assert ONNX_PATH not in seen and path.name == "bf16+channels_last" and path.engine == "torch"


def test_auto_takes_the_measured_onnxruntime_path_and_forced_settings_measure_nothing(monkeypatch):
    monkeypatch.setattr(network_probe, "onnxruntime_version", lambda: "1.99")
    monkeypatch.setattr(network_probe, "openvino_version", lambda: None)  # its paths: tests/nets/test_openvino_engine.py
    calls = []

    def detect(paths):
        calls.append(tuple(paths))
        return _samples({k: BENCH[k] for k in paths}), "cached"

    path = resolve_network_path("auto", "cpu", ndim=2, detect=detect)
    assert (path.name, path.engine, path.channels_last, path.source) == (ONNX_PATH, "onnxruntime", False, "cached")
    assert path.record()["precision"] == ONNX_PATH and path.timings[BASE] == pytest.approx(0.31)
    forced = resolve_network_path("fp32", "cpu", ndim=2, detect=detect)
    assert (forced.name, forced.source, len(calls)) == (BASE, "forced", 1)


# ------------------------------------------------------------------------------ measuring


def test_a_path_is_timed_only_while_it_can_still_win():
    machine = FakeMachine(BENCH)
    samples = measure_paths("inference", paths=tuple(BENCH), clock=machine.clock, prepare=machine.prepare,
                            rounds=3, budget_s=100.0, baseline=BASE)
    assert len(samples[BASE]) == 3 and len(samples[ONNX_PATH]) == 3 and len(samples["bf16+channels_last"]) == 3
    assert len(samples["fp32"]) == 1 and len(samples["bf16"]) == 1  # slower than the baseline: cannot win
    with pytest.raises(ValueError, match="baseline"):
        measure_paths("inference", paths=(BASE,), clock=machine.clock, prepare=machine.prepare, baseline="fp32")


def test_the_measurement_keeps_to_its_budget():
    machine = FakeMachine({BASE: 1.0, ONNX_PATH: 0.5})
    samples = measure_paths("inference", paths=(BASE, ONNX_PATH), clock=machine.clock, prepare=machine.prepare,
                            rounds=3, budget_s=2.0, baseline=BASE)
    assert len(samples[BASE]) == 1  # warm-up (1.5 s) and one round spent the budget


# ------------------------------------------------------------------------------ the cache


def _counting_measure(seconds, calls):
    def measure(paths):
        calls.append(tuple(paths))
        return _samples({k: seconds[k] for k in paths})

    return measure


def test_the_cache_is_keyed_by_architecture_and_batch_shape(tmp_path):
    calls = []
    measure = _counting_measure(BENCH, calls)
    paths = tuple(BENCH)
    first, source = detect_network_timings(ARCH, BATCH, paths, measure, baseline=BASE, directory=tmp_path)
    assert source == "measured" and first[ONNX_PATH] == [0.202] * 3
    again = detect_network_timings(ARCH, BATCH, paths, measure, baseline=BASE, directory=tmp_path)
    assert again == (first, "cached") and len(calls) == 1
    detect_network_timings({**ARCH, "depth": 3}, BATCH, paths, measure, baseline=BASE, directory=tmp_path)
    detect_network_timings(ARCH, (2, 1, 256, 256), paths, measure, baseline=BASE, directory=tmp_path)
    assert len(calls) == 3
    keys = [network_key(ARCH, BATCH), network_key({**ARCH, "depth": 3}, BATCH), network_key(ARCH, (2, 1, 256, 256))]
    assert len({k["architecture"] for k in keys}) == 2 and len({tuple(k["batch_shape"]) for k in keys}) == 2
    assert len({cache_file(k, CACHE_MODE, tmp_path) for k in keys}) == 3
    assert {"cpu", "torch", "threads", "onnxruntime"} <= set(keys[0])


@pytest.mark.parametrize("content", ["{not json", '{"format": "pixlearn-precision-timings"}', ""])
def test_a_corrupt_network_cache_is_measured_again(tmp_path, content, caplog):
    calls = []
    path = cache_file(network_key(ARCH, BATCH), CACHE_MODE, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    timings, source = detect_network_timings(ARCH, BATCH, tuple(BENCH), _counting_measure(BENCH, calls),
                                             baseline=BASE, directory=tmp_path)
    assert source == "measured" and len(calls) == 1 and "measuring again" in caplog.text
    assert detect_network_timings(ARCH, BATCH, tuple(BENCH), _counting_measure(BENCH, calls), baseline=BASE,
                                  directory=tmp_path)[1] == "cached"


def test_a_path_that_could_not_run_is_left_out_of_the_cache(tmp_path):
    calls = []

    def measure(paths):  # the onnxruntime engine failed: only the torch paths were timed
        calls.append(paths)
        return _samples({k: BENCH[k] for k in paths if k != ONNX_PATH})

    timings, _ = detect_network_timings(ARCH, BATCH, tuple(BENCH), measure, baseline=BASE, directory=tmp_path)
    assert ONNX_PATH not in timings
    cached, source = detect_network_timings(ARCH, BATCH, tuple(BENCH), measure, baseline=BASE, directory=tmp_path)
    assert (cached, source, len(calls)) == (timings, "cached", 1)
    with pytest.raises(ValueError, match="baseline|time"):
        detect_network_timings(ARCH, (1, 1, 8, 8), tuple(BENCH), lambda paths: _samples({"fp32": 1.0}),
                               baseline=BASE, directory=tmp_path)
