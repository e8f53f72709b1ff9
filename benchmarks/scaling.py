"""Benchmark: random-forest prediction time and peak memory against image size, and Dask speed-up.

One pixlearn random forest per dimension (its defaults: ``FeatureConfig()``, ``ClassifierConfig()``)
is fitted on a small image with dense labels and saved as a model file. Then:

* **size**: 4 image sizes in 2D (tiles of an ISBI 2012 EM test section, ``512**2`` to ``4096**2``)
  and 4 in 3D (tiles of the synthetic volume of ``pixel_classifier.py``, ``32x128**2`` to
  ``64x384**2``), each predicted from a TIFF file to a TIFF of labels by
  :func:`pixlearn.predict.predict_many` under a memory budget of 2 GiB (one tile per batch), in a fresh process
  (``run_isolated``): seconds (the manifest's: reading, tiles, writing), MPix/s, CPU seconds and
  peak RSS. Linear time shows as a slope near 1 of ``log(seconds)`` against ``log(pixels)``
  (least squares, given beside the MPix/s); flat memory as a peak RSS that stays near the budget's
  tiles and the model, whatever the size.
* **dask**: a folder of 8 ``1024**2`` images predicted with ``dask_address="local:1"`` and
  ``"local:2"`` (one worker process per image at a time, one thread each); speed-up = seconds of
  ``local:1`` / seconds of ``local:2``, cluster start included.

Results: ``benchmarks/results/scaling.json``. Run: ``.venv/bin/python benchmarks/scaling.py``
(about 3-5 minutes on 2 cores; ``--quick`` for a smaller check).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, host_facts, run_isolated, write_results
from pixel_classifier import synthetic_volume

ISBI = DATA / "isbi2012_em"
SIZES_2D = ((512, 512), (1024, 1024), (2048, 2048), (4096, 4096))
SIZES_3D = ((32, 128, 128), (32, 256, 256), (64, 256, 256), (64, 384, 384))
MEMORY_BUDGET = 2 * 2**30  # bytes a prediction may hold (pixlearn predict --memory 2GiB)
#: A classical model predicts the tiles of a batch one after another: one tile per batch lets the
#: budget go to one tile (larger cores, less halo computed twice) instead of four.
TILES = {"batch_size": 1}


def _base_images() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A 2D and a 3D image with dense labels (class 1: membrane or balls)."""
    import tifffile

    split = json.loads((ISBI / "split.json").read_text())
    name = split["test"][0]
    image_2d = tifffile.imread(ISBI / "images" / f"{name}.tif")
    labels_2d = tifffile.imread(ISBI / "labels" / f"{name}.tif").astype(np.int64)
    image_3d, labels_3d = synthetic_volume((64, 256, 256), seed=1)
    return {2: (image_2d, labels_2d), 3: (image_3d, labels_3d)}


def _fit_and_save(image: np.ndarray, labels: np.ndarray, path: Path) -> dict[str, Any]:
    """pixlearn's defaults fitted on `image` (every pixel labelled, the default pixels per class)."""
    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.models.model_file import save_model

    model = fit_pixel_classifier([image[..., None]], [labels], FeatureConfig(), ClassifierConfig())
    save_model(model, path)
    return {"n_features": model.n_features, "n_train_pixels": model.training["n_pixels"]}


def _tiled(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`image` repeated (mirrored every other time, so that no seam is sharp) to fill `shape`."""
    reps = [-(-s // n) for s, n in zip(shape, image.shape)]
    flipped = image
    for axis in range(image.ndim):
        flipped = np.concatenate([flipped, np.flip(flipped, axis)], axis=axis)
    big = np.tile(flipped, [-(-r // 2) for r in reps])
    return np.ascontiguousarray(big[tuple(slice(0, s) for s in shape)])


def _predict(model_path: Path, inputs: list[Path], out_dir: Path, dask: str | None) -> dict[str, Any]:
    """:func:`predict_many` as ``pixlearn predict`` runs it: seconds, CPU seconds, per-image seconds."""
    from pixlearn.models.model_file import load_model
    from pixlearn.predict import PredictOptions, TileConfig, predict_many

    model = load_model(model_path)
    start, cpu = time.perf_counter(), time.process_time()
    manifest = predict_many(model, inputs, out_dir, PredictOptions(tile=TileConfig(**TILES), memory_budget=MEMORY_BUDGET), dask_address=dask)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip() and "claimed" not in line]
    return {"seconds": seconds, "cpu_s": cpu_s, "image_seconds": [float(r["seconds"]) for r in records]}


def _slope(pixels: list[float], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(pixels): 1 is linear time."""
    return float(np.polyfit(np.log(pixels), np.log(seconds), 1)[0])


def run_sizes(tmp: Path, ndim: int, sizes: tuple[tuple[int, ...], ...], base: np.ndarray) -> dict[str, Any]:
    """Each size in a fresh process: the image's seconds (manifest), MPix/s, CPU s, peak RSS."""
    import tifffile

    rows = []
    for shape in sizes:
        name = "x".join(map(str, shape))
        source = tmp / f"{ndim}d_{name}.tif"
        tifffile.imwrite(source, _tiled(base, shape))
        result, _, peak = run_isolated(_predict, tmp / f"model_{ndim}d", [source], tmp / f"out_{ndim}d_{name}", None)
        pixels = float(np.prod(shape))
        seconds = result["image_seconds"][0]
        rows.append({"shape": list(shape), "mpix": pixels / 1e6, "seconds": seconds, "mpix_s": pixels / 1e6 / seconds,
                     "call_seconds": result["seconds"], "cpu_s": result["cpu_s"], "peak_rss_mib": peak})
        print(f"{ndim}D {name:>12}: {seconds:7.2f} s  {rows[-1]['mpix_s']:6.3f} MPix/s  "
              f"CPU {result['cpu_s']:6.2f} s  peak {peak:7.1f} MiB", flush=True)
    slope = _slope([r["mpix"] for r in rows], [r["seconds"] for r in rows])
    peaks = [r["peak_rss_mib"] for r in rows]
    return {"rows": rows, "slope_log_time_vs_log_pixels": slope,
            "slope_log_cpu_vs_log_pixels": _slope([r["mpix"] for r in rows], [r["cpu_s"] for r in rows]),
            "peak_rss_mib_max_over_min": max(peaks) / min(peaks)}


def run_dask(tmp: Path, base: np.ndarray, n_images: int, shape: tuple[int, int]) -> dict[str, Any]:
    """A folder of `n_images` images predicted with ``local:1`` and ``local:2``."""
    import tifffile

    folder = tmp / "folder"
    folder.mkdir()
    image = _tiled(base, shape)
    inputs = []
    for i in range(n_images):
        inputs.append(folder / f"image_{i:02d}.tif")
        tifffile.imwrite(inputs[-1], np.roll(image, 37 * i, axis=1))
    out: dict[str, Any] = {"n_images": n_images, "shape": list(shape)}
    for workers in (1, 2):
        result, _, _ = run_isolated(_predict, tmp / "model_2d", inputs, tmp / f"dask_{workers}", f"local:{workers}")
        out[f"local_{workers}_s"] = result["seconds"]
        print(f"dask local:{workers}: {n_images} images of {shape}: {result['seconds']:.2f} s", flush=True)
    out["speedup_local_2_vs_1"] = out["local_1_s"] / out["local_2_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes, 4 images for Dask")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not (ISBI / "split.json").exists():
        print(f"skipped: {ISBI} is not there")
        return 0
    sizes_2d = tuple(s for s in SIZES_2D if s[0] <= 1024) if args.quick else SIZES_2D
    sizes_3d = SIZES_3D[:2] if args.quick else SIZES_3D
    bases = _base_images()
    figures: dict[str, Any] = {"memory_budget_mib": MEMORY_BUDGET / 2**20, "cpu": host_facts()}
    with tempfile.TemporaryDirectory(prefix="pixlearn_scaling_") as name:
        tmp = Path(name)
        for ndim in (2, 3):
            image, labels = bases[ndim]
            crop = image if ndim == 2 else image[:32, :128, :128]
            crop_labels = labels if ndim == 2 else labels[:32, :128, :128]
            figures[f"model_{ndim}d"] = run_isolated(_fit_and_save, crop, crop_labels, tmp / f"model_{ndim}d")[0]
        figures["size_2d"] = run_sizes(tmp, 2, sizes_2d, bases[2][0])
        figures["size_3d"] = run_sizes(tmp, 3, sizes_3d, bases[3][0])
        figures["dask"] = run_dask(tmp, bases[2][0], 4 if args.quick else 8, (512, 512) if args.quick else (1024, 1024))
    for dim in ("2d", "3d"):
        print(f"{dim}: slope of log time vs log size {figures[f'size_{dim}']['slope_log_time_vs_log_pixels']:.3f}, "
              f"peak RSS max/min {figures[f'size_{dim}']['peak_rss_mib_max_over_min']:.2f}")
    print(f"dask local:2 vs local:1: {figures['dask']['speedup_local_2_vs_1']:.2f}x")
    write_results("scaling" + ("_quick" if args.quick else ""), figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
