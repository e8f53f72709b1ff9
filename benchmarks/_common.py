"""Helpers shared by the benchmarks: isolated runs with peak memory, timing, tables, JSON results."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data"


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        start = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB
        conn.send(("ok", result, seconds, peak))
    except BaseException:  # report anything to the parent
        conn.send(("error", traceback.format_exc(), 0.0, 0.0))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """Run ``fn(*args)`` in a fresh forked process.

    Returns
    -------
    result, seconds, peak_rss_mib
        `fn`'s (picklable) result, its wall time and the child's peak resident memory, so that
        the peak of one method is never inflated by another that ran earlier in this process.
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args))
    proc.start()
    child.close()
    status, result, seconds, peak = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark child failed:\n{result}")
    return result, seconds, peak


def run_cli(*args: Any) -> tuple[float, float, str, float]:
    """Run ``python -m pixlearn ARGS`` in a fresh process, as a user would.

    Returns
    -------
    seconds, peak_rss_mib, output, cpu_seconds
        Wall time, peak resident memory (``wait4``), stdout and stderr together, and the CPU
        seconds it took (user + system, all threads: what the load of other processes leaves
        out of the wall time).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pixlearn", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"pixlearn {' '.join(map(str, args))} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024.0, output, usage.ru_utime + usage.ru_stime


def median_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median wall time of `repeats` calls of `fn`, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def cpu_flags() -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` ``/proc/cpuinfo`` lists (all False where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {flag: False for flag in CPU_FLAGS}
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return {flag: flag in flags for flag in CPU_FLAGS}


def machine_info() -> dict[str, Any]:
    """A few facts that make benchmark figures comparable."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "cpu_model": host_facts().get("model"),
        "cpu_flags": cpu_flags(),
    }
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def cpu_facts() -> dict[str, Any]:
    """The CPU model, the flags that decide how fast fp32 and bf16 run, and torch's CPU capability
    (for benchmarks of networks; imports torch)."""
    import torch

    from pixlearn.nets.precision_probe import cpu_info

    model, flags = cpu_info()
    return {"cpu_model": model, "cpu_flags": list(flags), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def print_table(title: str, rows: list[tuple[str, Any, Any]], headers: tuple[str, str, str] = ("metric", "pixlearn", "peer")) -> None:
    """Print rows of (name, ours, peer) with the ratio ours/peer where both are numbers."""
    print(f"\n== {title}")
    print(f"{headers[0]:<28} {headers[1]:>14} {headers[2]:>14} {'ratio':>8}")
    for name, ours, peer in rows:
        ratio = ""
        if isinstance(ours, (int, float)) and isinstance(peer, (int, float)) and peer:
            ratio = f"{ours / peer:8.2f}"
        print(f"{name:<28} {_fmt(ours):>14} {_fmt(peer):>14} {ratio:>8}")
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def host_facts() -> dict[str, Any]:
    """CPU model, flags (``/proc/cpuinfo``), cores and the load average: what makes timings comparable."""
    facts: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        info = Path("/proc/cpuinfo").read_text()
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and "model" not in facts:
                facts["model"] = value.strip()
            if key.strip() == "flags" and "flags" not in facts:
                facts["flags"] = value.split()
    except OSError:
        pass
    try:
        facts["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return facts


def write_results(name: str, figures: dict[str, Any], *, merge: bool = False) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the figures and machine facts.

    With `merge`, the keys already in the file that `figures` does not name are kept (several
    benchmarks share one file).
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    kept: dict[str, Any] = {}
    if merge and path.exists():
        kept = json.loads(path.read_text())
    payload = {**kept, **figures, "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M")}
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(ROOT)}")
    return path
