"""The precision detector (:mod:`pixlearn.nets.precision`, :mod:`pixlearn.nets.precision_probe`).

Every timing here comes from a fake clock or is written by the test: nothing asserts on a real clock.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from pixlearn.errors import PixlearnError
from pixlearn.nets import precision_probe as probe
from pixlearn.nets.precision import (
    PrecisionPath,
    choose_precision,
    cpu_candidates,
    resolve_precision,
)
from pixlearn.nets.precision_probe import (
    PATHS,
    cache_dir,
    cache_file,
    cpu_info,
    detect_timings,
    machine_key,
    measure_paths,
    read_timings,
    write_timings,
)

# seconds per step: an AVX512-bf16 CPU (bf16 and channels-last pay), an AVX2-only one (bf16 is 11x slower)
BF16_WINS = {"fp32": 1.0, "fp32+channels_last": 0.95, "bf16": 0.8, "bf16+channels_last": 0.6}
BF16_LOSES = {"fp32": 1.0, "fp32+channels_last": 0.97, "bf16": 11.0, "bf16+channels_last": 10.0}


class FakeMachine:
    """A clock that advances only when a step runs, by that path's seconds (and a log of the runs)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.now = 0.0
        self.runs: list[tuple[str, str]] = []

    def clock(self) -> float:
        return self.now

    def prepare(self, mode: str, path: str):
        def step() -> None:
            self.runs.append((mode, path))
            self.now += self.seconds[path]

        return step


def _samples(seconds: dict[str, float], rounds: int = 3) -> dict[str, list[float]]:
    return {name: [t] * rounds for name, t in seconds.items()}


def _detector(seconds: dict[str, float], calls: list[str] | None = None):
    def detect(mode: str) -> tuple[dict[str, list[float]], str]:
        if calls is not None:
            calls.append(mode)
        return _samples(seconds), "measured"

    return detect


# ------------------------------------------------------------------------------ the decision


def test_choose_precision_takes_a_path_only_when_faster_by_the_margin():
    assert choose_precision(BF16_WINS) == "bf16+channels_last"
    assert choose_precision(BF16_LOSES) == "fp32"  # channels-last 3% faster: within the margin
    assert choose_precision({"fp32": 1.0, "bf16": 1.0 / 1.1}) == "bf16"  # exactly 10% faster
    assert choose_precision({"fp32": 1.0, "bf16": 0.92}) == "fp32"
    assert choose_precision({"fp32": 1.0, "bf16": 0.92}, margin=0.05) == "bf16"
    assert choose_precision({"fp32": 1.0, "bf16": 0.99}, margin=0.0) == "bf16"
    assert choose_precision({"fp32": 1.0}) == "fp32"


@pytest.mark.parametrize("seed", range(20))
def test_choose_precision_is_never_slower_than_the_baseline(seed):
    rng = torch.Generator().manual_seed(seed)
    timings = {name: float(torch.rand(1, generator=rng)) + 0.01 for name in PATHS}
    chosen = choose_precision(timings)
    assert timings[chosen] <= timings["fp32"]
    assert chosen == "fp32" or timings[chosen] * 1.1 <= timings["fp32"]


def test_choose_precision_needs_every_sample_faster():
    # one slow round of bf16 (another process woke up): not measurably faster, keep fp32
    assert choose_precision({"fp32": [1.0, 1.05, 1.2], "bf16": [0.5, 0.6, 0.95]}) == "fp32"
    assert choose_precision({"fp32": [1.0, 1.05, 1.2], "bf16": [0.5, 0.6, 0.85]}) == "bf16"
    # the fastest sample decides among the paths that qualify
    assert choose_precision({"fp32": [1.0], "bf16": [0.5, 0.8], "bf16+channels_last": [0.6, 0.7]}) == "bf16"


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1.0, [], [0.5, math.nan], "fast"])
def test_choose_precision_never_takes_an_unusable_timing(bad):
    assert choose_precision({"fp32": 1.0, "bf16": bad}) == "fp32"
    assert choose_precision({"fp32": bad, "bf16": 0.1}) == "fp32"  # no usable baseline: keep it


def test_choose_precision_refuses_a_missing_baseline_or_a_bad_margin():
    with pytest.raises(ValueError, match="baseline"):
        choose_precision({"bf16": 1.0})
    with pytest.raises(ValueError, match="margin"):
        choose_precision({"fp32": 1.0}, margin=1.5)


@pytest.mark.parametrize(
    ("setting", "mode", "ndim", "expected", "baseline"),
    [
        (("auto", "auto"), "train", 2, PATHS, "fp32"),
        (("auto", "auto"), "inference", 2,
         ("fp32+channels_last", "fp32", "bf16+channels_last", "bf16"), "fp32+channels_last"),
        (("auto", "auto"), "train", 3, ("fp32", "bf16"), "fp32"),  # 3D training stays contiguous
        (("auto", "auto"), "inference", 3, ("fp32+channels_last", "bf16+channels_last"), "fp32+channels_last"),
        (("auto", "on"), "train", 2, ("fp32+channels_last", "bf16+channels_last"), "fp32+channels_last"),
        (("auto", "off"), "train", 2, ("fp32", "bf16"), "fp32"),
        (("fp32", "auto"), "train", 2, ("fp32",), "fp32"),
        (("bf16", "auto"), "train", 2, ("bf16",), "bf16"),
        (("bf16", "on"), "train", 2, ("bf16+channels_last",), "bf16+channels_last"),
        (("fp32", "auto"), "inference", 2, ("fp32+channels_last",), "fp32+channels_last"),
    ],
)
def test_cpu_candidates(setting, mode, ndim, expected, baseline):
    assert cpu_candidates(*setting, mode=mode, ndim=ndim) == (tuple(expected), baseline)


# ------------------------------------------------------------------------------ resolution


def test_auto_on_a_cpu_takes_the_measured_path():
    path = resolve_precision("auto", "cpu", mode="train", detect=_detector(BF16_WINS))
    assert (path.name, path.dtype, path.channels_last, path.source) == ("bf16+channels_last", "bf16", True, "measured")
    assert path.memory_format(2) == torch.channels_last and path.memory_format(3) == torch.channels_last_3d
    assert path.record()["precision"] == "bf16+channels_last"
    assert path.record()["precision_timings_s"]["fp32"] == 1.0
    slow = resolve_precision("auto", "cpu", mode="train", detect=_detector(BF16_LOSES))
    assert slow.name == "fp32" and slow.memory_format(2) == torch.contiguous_format


def test_auto_respects_a_forced_memory_format_and_the_mode():
    off = resolve_precision("auto", "cpu", mode="train", channels_last="off", detect=_detector(BF16_WINS))
    assert off.name == "bf16"
    # prediction: fp32 channels-last is the baseline, contiguous fp32 is not 10% faster than it
    inference = resolve_precision("auto", "cpu", mode="inference", detect=_detector(BF16_LOSES))
    assert inference.name == "fp32+channels_last"
    three_d = resolve_precision("auto", "cpu", mode="train", ndim=3, detect=_detector(BF16_WINS))
    assert three_d.name == "bf16"


@pytest.mark.parametrize(("setting", "name"), [("fp32", "fp32"), ("bf16", "bf16")])
def test_forced_settings_never_measure(setting, name):
    calls: list[str] = []
    path = resolve_precision(setting, "cpu", mode="train", detect=_detector(BF16_WINS, calls))
    assert (path.name, path.source, calls) == (name, "forced", [])
    on = resolve_precision(setting, "cpu", mode="inference", detect=_detector(BF16_LOSES, calls))
    assert (on.name, calls) == (name + "+channels_last", [])


def test_forced_bf16_warns_on_a_cpu_without_native_bf16(monkeypatch, caplog):
    from pixlearn.nets import precision

    monkeypatch.setattr(precision, "cpu_info", lambda: ("an AVX2 CPU", ("avx2", "fma")))
    path = resolve_precision("bf16", "cpu")
    assert path.dtype == "bf16"
    assert "without native bf16" in caplog.text


@pytest.mark.parametrize(("setting", "channels_last"), [("fp16", "auto"), ("auto", "yes")])
def test_unknown_settings_are_refused(setting, channels_last):
    with pytest.raises(PixlearnError, match="precision must be one of"):
        resolve_precision(setting, "cpu", channels_last=channels_last)


@pytest.mark.parametrize("bf16", [True, False])
def test_cuda_keeps_mixed_precision_and_never_measures(monkeypatch, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    calls: list[str] = []
    train = resolve_precision("auto", "cuda", mode="train", detect=_detector(BF16_WINS, calls))
    assert (train.name, train.source) == (("bf16" if bf16 else "fp16") + "+channels_last", "cuda")
    assert resolve_precision("auto", "cuda", mode="train", ndim=3).name == ("bf16" if bf16 else "fp16")
    assert resolve_precision("auto", "cuda", mode="train", channels_last="off").channels_last is False
    assert resolve_precision("auto", "cuda", mode="inference").name == "fp32+channels_last"
    assert resolve_precision("fp32", "cuda", mode="train").name == "fp32+channels_last"
    assert calls == []
    if bf16:
        assert resolve_precision("bf16", "cuda", mode="inference").dtype == "bf16"
    else:
        with pytest.raises(PixlearnError, match="no bf16"):
            resolve_precision("bf16", "cuda")


def test_autocast_contexts():
    with PrecisionPath("bf16", False, "forced").autocast(torch.device("cpu")):
        y = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    assert y.dtype == torch.bfloat16
    with PrecisionPath("fp32", False, "forced").autocast(torch.device("cpu")):
        y = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    assert y.dtype == torch.float32


# ------------------------------------------------------------------------------ measuring, on a fake clock


def test_measure_paths_times_every_path_in_interleaved_rounds():
    machine = FakeMachine(BF16_WINS)
    samples = measure_paths("train", clock=machine.clock, prepare=machine.prepare, rounds=3, budget_s=100.0)
    assert {name: pytest.approx(s) for name, s in samples.items()} == _samples(BF16_WINS)
    assert machine.runs[:4] == [("train", p) for p in PATHS]  # the warm-up, untimed
    assert [p for _, p in machine.runs[4:8]] == list(PATHS)  # round 1: every path once
    assert len(machine.runs) == 4 * 4
    assert choose_precision(samples) == "bf16+channels_last"


def test_measure_paths_drops_hopeless_paths_and_keeps_to_its_budget():
    machine = FakeMachine(BF16_LOSES)
    samples = measure_paths("inference", clock=machine.clock, prepare=machine.prepare, rounds=3, budget_s=100.0)
    assert len(samples["bf16"]) == 1 and len(samples["bf16+channels_last"]) == 1  # > 3x slower
    assert len(samples["fp32"]) == 3 and len(samples["fp32+channels_last"]) == 3
    # the fp32 baselines are timed every round, however much faster another path is
    fast_bf16 = FakeMachine({"fp32": 1.0, "fp32+channels_last": 1.0, "bf16": 0.2, "bf16+channels_last": 0.1})
    samples = measure_paths("train", clock=fast_bf16.clock, prepare=fast_bf16.prepare, rounds=3, budget_s=100.0)
    assert all(len(s) == 3 for s in samples.values())
    busy = FakeMachine(BF16_WINS)
    samples = measure_paths("train", clock=busy.clock, prepare=busy.prepare, rounds=5, budget_s=4.0)
    assert all(len(s) == 1 for s in samples.values())  # warm-up + one round spent the budget


def test_measure_paths_refuses_unknown_paths_and_modes():
    machine = FakeMachine(BF16_WINS)
    with pytest.raises(ValueError, match="paths"):
        measure_paths("train", paths=("fp64",), clock=machine.clock, prepare=machine.prepare)
    with pytest.raises(ValueError, match="mode"):
        measure_paths("serve", clock=machine.clock, prepare=machine.prepare)


@pytest.mark.parametrize("mode", ["train", "inference"])
def test_the_real_workload_runs_every_path(mode, one_torch_thread):
    for path in PATHS:
        probe.conv_workload(mode, path)()  # runs; how fast is not asserted


# ------------------------------------------------------------------------------ the cache


def _count_measure(seconds: dict[str, float], calls: list[str]):
    def measure(mode: str) -> dict[str, list[float]]:
        calls.append(mode)
        return _samples(seconds)

    return measure


def test_cache_round_trip(tmp_path):
    calls: list[str] = []
    first, source = detect_timings("train", directory=tmp_path, measure=_count_measure(BF16_WINS, calls))
    assert (first, source, calls) == (_samples(BF16_WINS), "measured", ["train"])
    again, source = detect_timings("train", directory=tmp_path, measure=_count_measure(BF16_WINS, calls))
    assert (again, source, calls) == (first, "cached", ["train"])
    detect_timings("inference", directory=tmp_path, measure=_count_measure(BF16_LOSES, calls))
    assert calls == ["train", "inference"]  # one file per mode
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.startswith("precision-") and f.endswith(".json") for f in files)
    stored = json.loads(cache_file(machine_key(), "train", tmp_path).read_text())
    assert stored["key"] == machine_key() and stored["timings"] == _samples(BF16_WINS)


def test_cache_is_keyed_by_thread_count(tmp_path, one_torch_thread):
    one = cache_file(machine_key(), "train", tmp_path)
    torch.set_num_threads(2)
    assert cache_file(machine_key(), "train", tmp_path) != one


CORRUPT = [
    b"\xff\xfe not text",
    b"{ half a json",
    b"[1, 2, 3]",
    b'{"format": "something else"}',
]


@pytest.mark.parametrize("content", CORRUPT)
def test_a_corrupt_cache_is_measured_again(tmp_path, content, caplog):
    path = cache_file(machine_key(), "train", tmp_path)
    path.write_bytes(content)
    calls: list[str] = []
    timings, source = detect_timings("train", directory=tmp_path, measure=_count_measure(BF16_WINS, calls))
    assert (source, calls) == ("measured", ["train"])
    assert read_timings(path, machine_key(), "train") == timings  # replaced by a good file
    assert "ignoring" in caplog.text


@pytest.mark.parametrize(
    "change",
    [
        {"key": {"cpu": "another CPU"}},
        {"mode": "inference"},
        {"version": 99},
        {"timings": {"fp32": [1.0]}},  # paths missing
        {"timings": {**_samples(BF16_WINS), "bf16": [-1.0]}},
        {"timings": {**_samples(BF16_WINS), "bf16": []}},
        {"timings": {**_samples(BF16_WINS), "bf16": 0.5}},  # not a list of samples
        {"timings": {**_samples(BF16_WINS), "bf16": [True]}},
    ],
)
def test_a_cache_of_another_key_or_with_bad_timings_is_ignored(tmp_path, change):
    path = tmp_path / "timings.json"
    assert write_timings(path, machine_key(), "train", _samples(BF16_WINS))
    good = json.loads(path.read_text())
    assert read_timings(path, machine_key(), "train") == _samples(BF16_WINS)
    if "key" in change:
        change = {"key": {**good["key"], **change["key"]}}
    path.write_text(json.dumps({**good, **change}))
    assert read_timings(path, machine_key(), "train") is None


def test_an_unwritable_cache_never_fails(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    calls: list[str] = []
    timings, source = detect_timings("train", directory=blocker / "cache", measure=_count_measure(BF16_WINS, calls))
    assert (timings, source) == (_samples(BF16_WINS), "measured")
    assert "cannot write the precision cache" in caplog.text


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "timings.json"
    write_timings(path, machine_key(), "train", _samples(BF16_WINS))
    real_write_text = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert not write_timings(path, machine_key(), "train", _samples(BF16_LOSES))
    monkeypatch.undo()
    assert read_timings(path, machine_key(), "train") == _samples(BF16_WINS)  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["timings.json"]  # no temporary file left


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv("PIXLEARN_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == Path(tmp_path) / ".cache" / "pixlearn"


def test_cpu_info_reads_model_and_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma avx512f amx_bf16 amx_tile\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma avx512f amx_bf16 amx_tile\n")
    assert cpu_info(cpuinfo) == ("Test CPU 9000", ("avx2", "fma", "avx512f", "amx_tile", "amx_bf16"))
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16\nCPU part\t: 0xd40\n")
    assert cpu_info(arm)[1] == ("asimd", "sve", "bf16")
    assert cpu_info(tmp_path / "missing")[1] == ()


def test_detection_through_the_cache_decides_and_reports_its_source(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path))
    write_timings(cache_file(machine_key(), "train"), machine_key(), "train", _samples(BF16_WINS))
    path = resolve_precision("auto", "cpu", mode="train")
    assert (path.name, path.source) == ("bf16+channels_last", "cached")
