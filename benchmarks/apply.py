"""Benchmark the prediction engine: against MONAI, on images larger than memory, on Dask.

1. Speed against MONAI's ``sliding_window_inference`` with the same network (pixlearn's 2D U-Net,
   channels 16..256, random weights, eval mode), the same tiles (256, overlap 0.25), the same
   Gaussian blending (``_monai_speed``): MPix/s of MONAI and of every pixlearn precision path (fp32
   and bf16 in torch, fp32 in onnxruntime, fp32 and bf16 in OpenVINO), max abs difference of each
   from MONAI's outputs within its path's tolerance, achieved GFLOP/s beside a measured conv2d peak of the path's arithmetic
   (``percent_of_peak``). ``NetworkModel.predict_batch`` runs in the precision of ``--precision``
   (default fp32, as MONAI; ``auto``: the path the detector measures fastest for this network on
   this machine, printed with its ratio). Peak RSS of each engine in its own forked process. The
   JSON records the path that ran (``precision``) and the CPU's flags (``cpu_flags``).
2. Out of core: a 32768x32768 uint16 image and a 512x2048x2048 uint16 stack, written chunk by
   chunk as Zarr under bench_output/ (git-ignored), predicted Zarr-to-Zarr by ``predict_many``
   with a tiny random forest and a tiny U-Net (depth 1, 4 base channels, 2x space-to-depth stem),
   each trained in seconds on a small crop of the same kind of image, in a
   forked process whose peak RSS is reported; the data are deleted afterwards.
3. Dask: ``predict_many`` on a LocalCluster of 2 worker processes equals the single process.

Run: ``.venv/bin/python benchmarks/apply.py`` (about 30 minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, cpu_facts, print_table, run_isolated, write_results
from _monai_speed import run_part as monai_part

BENCH_DIR = ROOT / "bench_output" / "apply"


# ------------------------------------------------------------------------------- 2. out of core


def _synthetic_block(region: tuple[slice, ...], rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic image inside `region` (one slice per axis): bright blobs (a product of sines
    above 0.2) at 3000 on a background of 1000, plus Gaussian noise (sigma 100) when `rng` is
    given. Returns the float32 image and the boolean blob mask (the ground truth)."""
    grids = np.ogrid[region]
    pattern = np.ones((), np.float32)
    for g, period in zip(grids, (23.0, 31.0, 37.0)):
        pattern = pattern * np.sin(g.astype(np.float32) / period)
    truth = pattern > 0.2
    image = 1000.0 + 2000.0 * truth.astype(np.float32)
    if rng is not None:
        image += rng.standard_normal(size=truth.shape, dtype=np.float32) * 100.0
    return image, truth


def _write_synthetic(path: Path, shape: tuple[int, ...], chunks: tuple[int, ...], axes: str) -> None:
    """The synthetic image as uint16 Zarr, generated one chunk row at a time."""
    from pixlearn.data.images import create_zarr

    array = create_zarr(path, shape, np.uint16, chunks=chunks, axes=axes)
    rng = np.random.default_rng(3)
    step = chunks[0]
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        block, _ = _synthetic_block((slice(start, stop),) + tuple(slice(0, n) for n in shape[1:]), rng)
        array[start:stop] = np.clip(block, 0, 65535).astype(np.uint16)


def _tiny_classifier(ndim: int) -> Any:
    """A random forest of 2 trees of depth 3 on one feature (Gaussian, sigma 1): cheap per pixel."""
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier

    rng = np.random.default_rng(5)
    image = rng.normal(1000, 100, size=(16,) * (ndim - 2) + (64, 64)).astype(np.float32)
    image[..., 16:48, 16:48] += 2000
    labels = (image > 2000).astype(np.int64)
    return fit_pixel_classifier([image[..., None]], [labels], FeatureConfig(sigmas=(1.0,), features=("gaussian",)),
                                ClassifierConfig(rf=ForestConfig(n_estimators=2, max_depth=3), n_jobs=1, seed=0))


def _tiny_network(ndim: int) -> Any:
    """A tiny U-Net (depth 1, 4 base channels, 2x space-to-depth stem) trained for a few seconds on
    a small crop of the synthetic image (a different noise draw) to segment its blobs."""
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.training import TrainConfig
    from pixlearn.nets.unet import UNetConfig

    shape = (32, 128, 128) if ndim == 3 else (256, 256)
    image, truth = _synthetic_block(tuple(slice(0, n) for n in shape), np.random.default_rng(11))
    unet = UNetConfig(ndim=ndim, in_channels=1, out_channels=2, depth=1, base_channels=4, stem_factor=2)
    patch = (16, 64, 64) if ndim == 3 else (64, 64)
    cfg = TrainConfig(epochs=6, steps_per_epoch=10, batch_size=4, patch_shape=patch, lr=1e-2, patience=0, seed=0,
                      val_patches=4)
    return fit_network([image[..., None]], [truth.astype(np.int64)], "semantic", unet=unet, train_config=cfg,
                       options=FitOptions(device="cpu"))


def _tiny_model(kind: str, ndim: int) -> Any:
    return _tiny_classifier(ndim) if kind == "classical" else _tiny_network(ndim)


MODEL_NAMES = {"classical": "random forest (2 trees, depth 3, 1 Gaussian feature), exact tiles",
               "network": "tiny U-Net (depth 1, 4 channels, stem 2, trained a few seconds), blended tiles"}


def _predict_big(source: str, out_dir: str, kind: str, ndim: int, tile: tuple[int, ...], batch: int,
                 threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from pixlearn.predict import PredictOptions, predict_many, read_manifest
    from pixlearn.predict.tiling import TileConfig

    model = _tiny_model(kind, ndim)
    predict_many(model, [source], out_dir, PredictOptions(output_format="zarr", tile=TileConfig(tile_shape=tile, batch_size=batch)), model_name=kind)
    import zarr

    out = zarr.open_array(str(Path(out_dir) / (Path(source).stem + ".zarr")), mode="r")
    # accuracy against the blob mask in a window at the centre of the image (512 pixels, 128 voxels wide)
    side = 512 if ndim == 2 else 128
    centre = tuple(slice(n // 2 - min(n, side) // 2, n // 2 + min(n, side) // 2) for n in out.shape)
    _, truth = _synthetic_block(centre, None)
    precision = {} if kind == "classical" else {"precision": model.precision_path.name,
                                                  "train_precision": model.history.get("precision")}
    return {"seconds_in_manifest": read_manifest(out_dir)[-1]["seconds"], "shape": list(out.shape),
            "incomplete": bool(out.attrs.get("incomplete")), "halo": list(model.halo),
            "accuracy_centre_window": float(np.mean((np.asarray(out[centre]) > 0) == truth)), **precision}


def _big_runs(name: str, shape: tuple[int, ...], chunks: tuple[int, ...], runs: list[tuple[str, tuple[int, ...], int]],
              threads: int, keep: bool) -> dict[str, dict[str, Any]]:
    """Write one synthetic image, predict it with each (model kind, tile, batch), delete it."""
    folder = BENCH_DIR / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source = folder / "input.zarr"
    start = time.perf_counter()
    _write_synthetic(source, shape, chunks, "ZYX"[3 - len(shape):])
    generate = time.perf_counter() - start
    results = {}
    try:
        for kind, tile, batch in runs:
            out = folder / f"out-{kind}"
            info, seconds, peak = run_isolated(_predict_big, str(source), str(out), kind, len(shape), tile, batch, threads)
            shutil.rmtree(out, ignore_errors=True)
            results[kind] = {"shape": list(shape), "tile": list(tile), "seconds": seconds, "threads": threads,
                             "generate_seconds": generate, "mpix_per_s": float(np.prod(shape)) / seconds / 1e6,
                             "peak_rss_mib": peak, "model": MODEL_NAMES[kind], **info}
            print_table(f"out of core {shape}, {MODEL_NAMES[kind]}",
                        [("seconds", seconds, None), ("MPix/s", results[kind]["mpix_per_s"], None),
                         ("peak RSS MiB", peak, 2048.0)], ("metric", "pixlearn", "bound"))
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return results


# ------------------------------------------------------------------------------- 3. Dask


def _dask_equal(size: int) -> dict[str, Any]:
    """predict_many single-process and on a LocalCluster of 2 worker processes, both model kinds.

    The classical path is compared bit for bit. Network outputs may differ in the last float bits
    (the workers run torch with one thread, oneDNN then sums in another order): class maps must be
    equal and probabilities within 1e-5.
    """
    import zarr

    from pixlearn import predict as predict_module
    from pixlearn.data.images import write_image
    from pixlearn.predict import PredictOptions, predict_many
    from pixlearn.predict.tiling import TileConfig

    folder = BENCH_DIR / "dask"
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(4)
    inputs = []
    for i, s in enumerate((size, size // 2, size // 3)):
        path = folder / "in" / f"img{i}.tif"
        write_image(path, (rng.random((s, s + 17)) * 4000).astype(np.uint16))
        inputs.append(path)
    predict_module.DASK_BLOCK_PIXELS[2] = (size * size) // 8  # the largest image also goes out in blocks
    result: dict[str, Any] = {}
    for kind in ("classical", "network"):
        model = _tiny_model(kind, 2)
        tile_cfg = TileConfig(tile_shape=(256, 256), batch_size=2)
        seconds = {}
        for run, address in (("single", None), ("dask", "local:2")):
            start = time.perf_counter()
            predict_many(model, inputs, folder / kind / run, PredictOptions(tile=tile_cfg, output_format="zarr", probabilities=True), dask_address=address)
            seconds[run] = time.perf_counter() - start
        labels_equal, bitwise, max_diff = True, True, 0.0
        for p in inputs:
            for name in (p.stem + ".zarr", f"probabilities/{p.stem}.zarr"):
                a = zarr.open_array(str(folder / kind / "single" / name), mode="r")[...]
                b = zarr.open_array(str(folder / kind / "dask" / name), mode="r")[...]
                bitwise &= bool(np.array_equal(a, b))
                if not name.startswith("probabilities"):
                    labels_equal &= bool(np.array_equal(a, b))
                max_diff = max(max_diff, float(np.abs(a.astype(np.float64) - b).max()))
        result[kind] = {"bitwise_equal": bitwise, "labels_equal": labels_equal, "max_abs_diff": max_diff,
                        "single_seconds": seconds["single"], "dask_seconds": seconds["dask"]}
    shutil.rmtree(folder, ignore_errors=True)
    equal = result["classical"]["bitwise_equal"] and result["network"]["labels_equal"] \
        and result["network"]["max_abs_diff"] <= 1e-5
    return {"dask_equal": equal, "dask": result}


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images: a smoke run of a few minutes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every engine")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: monai,big2d,big3d,dask")
    parser.add_argument("--keep", action="store_true", help="keep the big synthetic images")
    parser.add_argument("--big-models", default="classical,network",
                        help="model kinds for the out-of-core runs (classical: tiny forest; network: tiny U-Net)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="precision of pixlearn's network against MONAI (auto: the detector's choice here)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    figures: dict[str, Any] = {"quick": args.quick}
    batch = 4

    # big runs first, forked from a parent that has not touched torch
    kinds = [k for k in args.big_models.split(",") if k]
    if "big2d" not in skip:
        shape2 = (4096, 4096) if args.quick else (32768, 32768)
        runs2 = [(k, (1024, 1024) if k == "classical" else (512, 512), 1 if k == "classical" else 4) for k in kinds]
        big2 = _big_runs("big2d", shape2, (512, 512), runs2, args.threads, args.keep)
        figures["big_2d"] = big2
        figures["peak_rss_mib_2d_32k"] = max(r["peak_rss_mib"] for r in big2.values())
    if "big3d" not in skip:
        shape3 = (64, 512, 512) if args.quick else (512, 2048, 2048)
        runs3 = [(k, (64, 256, 256), 1) for k in kinds]
        big3 = _big_runs("big3d", shape3, (32, 256, 256), runs3, args.threads, args.keep)
        figures["big_3d"] = big3
        figures["peak_rss_mib_3d_512x2048x2048"] = max(r["peak_rss_mib"] for r in big3.values())

    if "monai" not in skip:
        figures.update(monai_part(run_isolated, print_table, quick=args.quick, threads=args.threads, batch=batch,
                                  precision=args.precision, cache=BENCH_DIR / "precision-cache"))

    if "dask" not in skip:
        dask = _dask_equal(512 if args.quick else 1024)
        figures.update(dask)
        rows = []
        for kind, r in dask["dask"].items():
            rows += [(f"{kind} bitwise equal", str(r["bitwise_equal"]), None),
                     (f"{kind} max abs diff", r["max_abs_diff"], None),
                     (f"{kind} seconds", r["dask_seconds"], r["single_seconds"])]
        print_table("Dask LocalCluster(2 processes) vs single process", rows, ("metric", "dask", "single"))
    name = "apply" if not args.quick else "apply_quick"
    previous = RESULTS / f"{name}.json"
    if (skip or kinds != ["classical", "network"]) and previous.exists():
        # a partial run updates the figures of the parts (and big-image model kinds) it ran
        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k not in ("machine", "date")}
        for key, peak in (("big_2d", "peak_rss_mib_2d_32k"), ("big_3d", "peak_rss_mib_3d_512x2048x2048")):
            if key in figures and key in kept:
                figures[key] = {**kept[key], **figures[key]}
                figures[peak] = max(r["peak_rss_mib"] for r in figures[key].values())
        figures = {**kept, **figures, "parts_run_last": sorted({"monai", "big2d", "big3d", "dask"} - skip)}
    facts, _, _ = run_isolated(cpu_facts)  # torch stays out of this parent process
    write_results(name, {**figures, **facts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
