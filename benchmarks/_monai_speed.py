"""Part 1 of ``benchmarks/apply.py``: pixlearn's tiled network inference against MONAI's.

The same network (pixlearn's 2D U-Net, channels 16..256, random weights and batch-norm statistics,
eval mode), the same tiles (256, overlap 0.25), the same Gaussian blending, in one process with
interleaved repeats (the fastest of each counts). pixlearn runs what users get: ``predict_tiled``
with ``NetworkModel.predict_batch`` in the precision of ``--precision`` (``auto``: the path the
detector of :mod:`pixlearn.nets.network_probe` measures fastest for this network on its first
batch, timed outside the runs, with a fresh cache). Every other precision path runs as a row of
its own (``pixlearn_<path>``: fp32 and bf16 in torch with channels-last memory, fp32 in
onnxruntime, fp32 and bf16 in OpenVINO), so the table shows all of them against MONAI. Each output
is compared with MONAI's, within the tolerance of its path (1e-4 for fp32 paths, the outside
engines' included; 1e-2 for bf16).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

TILE, OVERLAP = 256, 0.25
TOLERANCES = {"fp32": 1e-4, "bf16": 1e-2}  # pixlearn.nets.precision.FP32_TOLERANCE and BF16_TOLERANCE


def tolerance(path: str) -> float:
    """Largest max abs difference from MONAI's fp32 outputs accepted of a precision path."""
    return TOLERANCES[path.partition("+")[0]]


def bench_net(ndim: int = 2, seed: int = 0) -> Any:
    """pixlearn's U-Net with random weights and non-trivial batch-norm statistics, in eval mode."""
    import torch

    from pixlearn.nets.unet import UNet, UNetConfig

    cfg = UNetConfig(ndim=ndim, in_channels=1, out_channels=2, depth=4, base_channels=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(cfg)
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.8, 1.2)
    return cfg, net.eval()


def bench_image(size: int) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(size, size)).astype(np.float32)


def monai_run(net: Any, image: np.ndarray, sw_batch: int) -> np.ndarray:
    import torch
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(image)[None, None]
    with torch.inference_mode():
        y = sliding_window_inference(x, (TILE, TILE), sw_batch, net, overlap=OVERLAP, mode="gaussian")
    return y[0].permute(1, 2, 0).numpy()


def pixlearn_run(predict_fn: Any, image: np.ndarray, batch: int, divisor: int = 16) -> np.ndarray:
    from pixlearn.predict import predict_tiled
    from pixlearn.predict.tiling import TileConfig

    overlap = int(TILE * OVERLAP)
    cfg = TileConfig(tile_shape=(TILE, TILE), overlap=overlap, blend="gaussian", mode="blended", batch_size=batch)
    return predict_tiled(image[..., None], predict_fn, cfg, halo=0, divisor=divisor, batched=True)


def product_model(cfg: Any, net: Any, precision: str = "fp32") -> Any:
    from pixlearn.nets.model import NetworkModel

    return NetworkModel(cfg, "restore", net, device="cpu", precision=precision)  # "restore": raw outputs, like MONAI's


def path_runners(cfg: Any, net: Any) -> dict[str, Any]:
    """A batched predict function per precision path: torch fp32 and bf16 (channels-last, forced
    through ``NetworkModel``), fp32 in onnxruntime and fp32 and bf16 in OpenVINO (the engines of
    ``NetworkModel``'s outside paths, where the runtime is installed and the export works)."""
    from pixlearn.nets.onnx_engine import build_engine
    from pixlearn.nets.unet import size_divisor

    runners = {"fp32+channels_last": product_model(cfg, net, "fp32").predict_batch,
               "bf16+channels_last": product_model(cfg, net, "bf16").predict_batch}
    for runtime, dtype in (("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")):
        engine = build_engine(net, cfg.ndim, cfg.in_channels, size_divisor(cfg), runtime=runtime, dtype=dtype)
        if engine is not None:
            runners[f"{dtype}+{runtime}"] = lambda blocks, e=engine: np.moveaxis(e(np.moveaxis(blocks, -1, 1)), 1, -1)
    return runners


def speed(size: int, threads: int, rounds: int, batch: int, precision: str, cache: str) -> dict[str, Any]:
    """Interleaved timings of MONAI and of each pixlearn path on one image; max abs differences."""
    import torch

    os.environ["PIXLEARN_CACHE_DIR"] = cache  # the detector measures here, once, in this run
    torch.set_num_threads(threads)
    cfg, net = bench_net()
    image = bench_image(size)
    model = product_model(cfg, net, precision)
    start = time.perf_counter()
    pixlearn_run(model.predict_batch, bench_image(TILE + 192), batch)  # the path is chosen on the first batch
    detector_seconds = time.perf_counter() - start
    chosen = model.precision_path
    variants = {"monai_b1": lambda: monai_run(net, image, 1), "monai_b4": lambda: monai_run(net, image, batch),
                "pixlearn_networkmodel": lambda: pixlearn_run(model.predict_batch, image, batch)}
    for name, run in path_runners(cfg, net).items():
        if name != chosen.name:
            pixlearn_run(run, bench_image(TILE + 192), batch)  # fast copy or session built outside the timings
            variants[f"pixlearn_{name}"] = lambda run=run: pixlearn_run(run, image, batch)
    best = {k: float("inf") for k in variants}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            outputs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    from pixlearn.predict.tiling import tile_grid

    reference = outputs["monai_b1"]
    return {"seconds": best, "max_abs_diff": {k: float(np.abs(v - reference).max()) for k, v in outputs.items()},
            "flops_per_tile": flops_per_tile(net), "detector_seconds": detector_seconds,
            "n_tiles": len(tile_grid((size, size), TILE, int(TILE * OVERLAP), divisor=16)),
            "conv_peak_gflops": conv_peak(), "conv_peak_gflops_bf16": conv_peak(bf16=True), "bf16": bf16_tile(net),
            "precision": chosen.name, "precision_record": chosen.record()}


def flops_per_tile(net: Any) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net(torch.zeros(1, 1, TILE, TILE))
    return float(counter.get_total_flops())


def conv_peak(bf16: bool = False) -> float:
    """GFLOP/s of a large 3x3 conv2d (64->64 channels, channels-last, fp32 or bf16 autocast), best of 5."""
    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, 128, 128).contiguous(memory_format=torch.channels_last)
    flops = 2.0 * 4 * 64 * 64 * 9 * 128 * 128
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        conv(x)
        for _ in range(5):
            start = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def bf16_tile(net: Any) -> dict[str, float]:
    """One batch of 2 tiles: ``precision="bf16"`` against fp32, time and max abs difference."""
    x = np.random.default_rng(2).normal(size=(2, TILE, TILE, 1)).astype(np.float32)
    times = {}
    out = {}
    for name in ("fp32", "bf16"):
        predict = product_model(net.cfg, net, name).predict_batch
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            out[name] = np.asarray(predict(x), np.float32)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return {"fp32_seconds": times["fp32"], "bf16_seconds": times["bf16"],
            "bf16_speedup": times["fp32"] / times["bf16"],
            "max_abs_diff": float(np.abs(out["bf16"] - out["fp32"]).max())}


def rss_monai(size: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    _, net = bench_net()
    return float(monai_run(net, bench_image(size), 1).sum())


def rss_pixlearn(size: int, threads: int, batch: int, precision: str, cache: str) -> float:
    import torch

    os.environ["PIXLEARN_CACHE_DIR"] = cache  # the path measured by `speed`, read from its cache
    torch.set_num_threads(threads)
    cfg, net = bench_net()
    return float(pixlearn_run(product_model(cfg, net, precision).predict_batch, bench_image(size), batch).sum())


def figures(speed_result: dict[str, Any], size: int, threads: int, batch: int) -> dict[str, Any]:
    """The JSON figures of a :func:`speed` result: MPix/s, GFLOP/s, speed-ups and the percentage of peak."""
    s = speed_result
    mpix = {k: size * size / t / 1e6 for k, t in s["seconds"].items()}
    gflops = {k: s["n_tiles"] * s["flops_per_tile"] / t / 1e9 for k, t in s["seconds"].items()}
    monai_best = max(mpix["monai_b1"], mpix["monai_b4"])
    ours = "pixlearn_networkmodel"
    bf16 = s["precision"].startswith("bf16")
    peak = s["conv_peak_gflops_bf16"] if bf16 else s["conv_peak_gflops"]
    basis = ("bf16 autocast" if bf16 else "fp32") + " 3x3 conv2d 64->64, 4x128x128, channels-last, in torch (oneDNN)"
    paths = {k.removeprefix("pixlearn_"): k for k in mpix if k.startswith("pixlearn_") and k != ours}
    paths[s["precision"]] = ours
    return {
        "monai_threads": threads, "image_size": size, "tile": TILE, "overlap": OVERLAP, "blend": "gaussian",
        "batch_size": batch, "mpix_per_s": mpix, "gflops_per_s": gflops, "conv_peak_gflops": s["conv_peak_gflops"],
        "conv_peak_gflops_bf16": s["conv_peak_gflops_bf16"], "max_abs_diff_vs_monai": s["max_abs_diff"],
        "bf16": s["bf16"], "precision": s["precision"], "precision_detector": s["precision_record"],
        "precision_detector_seconds": s["detector_seconds"], "pixlearn_engine": ours,
        "speedup_vs_monai": mpix[ours] / monai_best, "speedup_vs_monai_default_b1": mpix[ours] / mpix["monai_b1"],
        "speedup_vs_monai_by_path": {p: mpix[k] / monai_best for p, k in paths.items()},
        "max_abs_diff": s["max_abs_diff"][ours], "max_abs_diff_tolerance": tolerance(s["precision"]),
        "within_tolerance": s["max_abs_diff"][ours] <= tolerance(s["precision"]),
        "within_tolerance_by_path": {p: s["max_abs_diff"][k] <= tolerance(p) for p, k in paths.items()},
        "percent_of_peak": 100.0 * gflops[ours] / peak, "percent_of_peak_basis": basis,
    }


def run_part(run_isolated: Any, print_table: Any, *, quick: bool, threads: int, batch: int, precision: str,
             cache: Path) -> dict[str, Any]:
    """Part 1 in forked processes (speed, then each engine's peak RSS); prints the table."""
    size = TILE + 192 * (3 if quick else 7)  # MONAI's and pixlearn's grids coincide
    shutil.rmtree(cache, ignore_errors=True)
    result, _, _ = run_isolated(speed, size, threads, 2 if quick else 3, batch, precision, str(cache))
    _, _, rss_theirs = run_isolated(rss_monai, size, threads)
    _, _, rss_ours = run_isolated(rss_pixlearn, size, threads, batch, precision, str(cache))
    out = {**figures(result, size, threads, batch), "peak_rss_mib_monai": rss_theirs, "peak_rss_mib_pixlearn": rss_ours}
    monai_best = max(out["mpix_per_s"]["monai_b1"], out["mpix_per_s"]["monai_b4"])
    chosen = out["precision"]
    rows = [(f"MPix/s {k}" + (f" ({chosen})" if k == "pixlearn_networkmodel" else ""), v, monai_best)
            for k, v in out["mpix_per_s"].items()]
    peak = out["conv_peak_gflops_bf16"] if chosen.startswith("bf16") else out["conv_peak_gflops"]
    rows += [(f"detector's path: {chosen}", out["speedup_vs_monai"], None),
             ("GFLOP/s pixlearn (its path)", out["gflops_per_s"]["pixlearn_networkmodel"], peak),
             ("GFLOP/s monai (best)", max(out["gflops_per_s"]["monai_b1"], out["gflops_per_s"]["monai_b4"]), peak),
             ("max abs diff", out["max_abs_diff"], out["max_abs_diff_tolerance"]),
             ("peak RSS MiB", rss_ours, rss_theirs)]
    rows += [(f"max abs diff {k.removeprefix('pixlearn_')}", v, None)
             for k, v in out["max_abs_diff_vs_monai"].items() if k.startswith("pixlearn_")]
    print_table(f"2D U-Net 16..256, {size}x{size}, tile {TILE}, overlap {OVERLAP}, gaussian; pixlearn path {chosen}, "
                f"{out['speedup_vs_monai']:.2f}x MONAI, {out['percent_of_peak']:.0f}% of the {out['percent_of_peak_basis']} peak",
                rows, ("metric", "pixlearn", "MONAI/peak/tol"))
    return out
