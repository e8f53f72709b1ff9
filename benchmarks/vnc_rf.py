"""Benchmark: a random forest on a real anisotropic ssTEM stack, trained and applied as a user would.

Data: ``shared/data/drosophila_vnc_sstem`` (read there, never copied; CC BY-NC-SA): the train
volume ``(15, 1024, 1024)`` with dense labels of 5 classes, the test volume ``(5, 1024, 1024)``;
4.6 nm pixels, 45-50 nm sections (the files state no spacing, so ``--spacing 50,4.6,4.6``).

* **ours**: ``pixlearn train --method rf --spacing 50,4.6,4.6 --memory 2GiB`` on the train volume
  (every other setting a default), then ``pixlearn predict --memory 2GiB`` on the test volume,
  each in its own process: wall time, peak resident memory (``wait4``), prediction MVox/s (the
  seconds the manifest records for the image: reading, tiles, writing; the command's wall time,
  with interpreter start and model loading, is reported too), per-class IoU on the test volume.
* **today's defaults** (the settings before issue 12: isotropic filters, 100 trees grown until pure,
  200,000 pixels per class; ``--baseline-crop``): fitting them on the whole train volume takes
  longer than a benchmark may, so they are trained on a crop of it (all 15 sections, the first
  ``C x C`` pixels) and scored on the whole test volume (block-wise prediction: the labels
  ``pixlearn predict`` writes); ours is trained on the same crop too, for a like-for-like IoU.
  Their prediction speed through the tile engine of before is estimated from one of its tiles
  (``5 x 93 x 93`` read for a core of ``5 x 1 x 1``: the halo of 46 pixels of sigma 10, isotropic,
  left one pixel of core in a tile sized from 1 GiB).
* ``--sweep``: mean and membrane IoU against tree depth, trees and pixels per class (features
  with the spacing; forests fitted on the same gathered features).

Results: ``benchmarks/results/pixel_classifier.json`` keys ``vnc_rf_*`` (merged; other keys kept).
Run: ``.venv/bin/python benchmarks/vnc_rf.py`` (about 3 minutes on 2 cores; ``--skip-baseline``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, host_facts, print_table, run_cli, run_isolated, write_results

VNC = DATA / "drosophila_vnc_sstem"
SPACING = "50,4.6,4.6"  # nm: section thickness 45-50, pixels 4.6 (the README of the data)
CLASSES = ("intracellular", "membrane", "glia", "mitochondria", "synapse")
#: The tile the engine of before chose for this model and image: 2 * 46 + 1 per in-plane axis.
OLD_TILE = (5, 93, 93)


def _ious(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    out = []
    for k in range(len(CLASSES)):
        union = np.count_nonzero((pred == k) | (truth == k))
        out.append(float(np.count_nonzero((pred == k) & (truth == k)) / union) if union else float("nan"))
    return out


def _folders(tmp: Path) -> tuple[Path, Path, Path]:
    """Train image/label folders and the test image, as links to the shared data (never copies)."""
    images, labels = tmp / "train" / "images", tmp / "train" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    (images / "stack1.tif").symlink_to(VNC / "images" / "stack1_train.tif")
    (labels / "stack1.tif").symlink_to(VNC / "labels" / "stack1_train.tif")
    test = tmp / "test.tif"
    test.symlink_to(VNC / "images" / "stack1_test.tif")
    return images, labels, test


def run_ours(tmp: Path, memory: str) -> dict[str, Any]:
    import tifffile

    images, labels, test = _folders(tmp)
    model, out = tmp / "model", tmp / "pred"
    train_s, train_peak, train_log, train_cpu = run_cli("train", "--method", "rf", "--images", images, "--labels", labels,
                                                     "-o", model, "--spacing", SPACING, "--memory", memory)
    predict_s, predict_peak, predict_log, predict_cpu = run_cli("predict", model, test, "-o", out, "--memory", memory)
    record = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()
              if line.strip() and "claimed" not in line][-1]
    from pixlearn.models.model_file import load_model

    pred = tifffile.imread(out / "test.tif")
    truth = tifffile.imread(VNC / "labels" / "stack1_test.tif")
    trained = load_model(model)
    voxels = truth.size
    ious = _ious(pred, truth)
    return {
        "train_s": train_s, "train_peak_rss_mib": train_peak,
        "predict_command_s": predict_s, "predict_s": float(record["seconds"]), "predict_peak_rss_mib": predict_peak,
        "predict_mvox_s": voxels / 1e6 / float(record["seconds"]),
        "predict_command_mvox_s": voxels / 1e6 / predict_s,
        "train_cpu_s": train_cpu, "predict_command_cpu_s": predict_cpu,
        "predict_command_mvox_per_cpu_s": voxels / 1e6 / predict_cpu,
        "iou": dict(zip(CLASSES, ious)), "miou": float(np.nanmean(ious)),
        "training": trained.training, "spacing": trained.feature_cfg.spacing, "halo": list(trained.halo),
        "nodes_per_tree": float(np.mean([e.tree_.node_count for e in trained.estimator.estimators_])),
        "log": (train_log + predict_log)[-2000:],
    }


def _fit_on_crop(crop: int, old: bool) -> dict[str, Any]:
    """Fit today's defaults (`old`) or ours on the crop; predict the whole test volume block-wise."""
    import tifffile

    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.data.memory import total_memory
    from pixlearn.data.spacing import parse_spacing, relative_spacing

    image = tifffile.imread(VNC / "images" / "stack1_train.tif")[:, :crop, :crop, None]
    labels = tifffile.imread(VNC / "labels" / "stack1_train.tif")[:, :crop, :crop].astype(np.int16)
    if old:
        features = FeatureConfig()
        clf = ClassifierConfig(rf=ForestConfig(n_estimators=100, max_depth=None), max_samples_per_class=200_000)
        budget = total_memory()  # there was no budget
    else:
        features = FeatureConfig(spacing=relative_spacing(parse_spacing(SPACING)))
        clf, budget = ClassifierConfig(), 2 * 2**30
    start = time.perf_counter()
    model = fit_pixel_classifier([image], [labels], features, clf, class_names=CLASSES, memory_budget=budget)
    fit_s = time.perf_counter() - start
    test = tifffile.imread(VNC / "images" / "stack1_test.tif")[..., None]
    start = time.perf_counter()
    pred = model.predict_labels(test)
    predict_s = time.perf_counter() - start
    tile_s = None
    if old:  # one tile of the engine of before: 5 x 93 x 93 read, 5 x 1 x 1 kept
        block = np.zeros((1,) + OLD_TILE + (1,), np.float32)
        block[0, ..., 0] = test[:, :93, :93, 0] / 255.0
        model.predict_batch(block)
        start = time.perf_counter()
        model.predict_batch(block)
        tile_s = time.perf_counter() - start
    truth = tifffile.imread(VNC / "labels" / "stack1_test.tif")
    ious = _ious(pred, truth)
    nodes = [e.tree_.node_count for e in getattr(model.estimator, "estimators_", [])]
    return {"fit_s": fit_s, "blockwise_predict_s": predict_s, "iou": dict(zip(CLASSES, ious)),
            "miou": float(np.nanmean(ious)), "n_train_pixels": model.training["n_pixels"],
            "nodes_per_tree": float(np.mean(nodes)) if nodes else None, "old_tile_s": tile_s,
            "old_engine_mvox_s": (5 / 1e6 / tile_s) if tile_s else None}


def run_baseline(crop: int) -> dict[str, Any]:
    old, old_s, old_peak = run_isolated(_fit_on_crop, crop, True)
    new, new_s, new_peak = run_isolated(_fit_on_crop, crop, False)
    return {"crop": [15, crop, crop], "today": {**old, "peak_rss_mib": old_peak, "total_s": old_s},
            "ours_on_crop": {**new, "peak_rss_mib": new_peak, "total_s": new_s}}


def _sweep_one(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gather the features of up to 100,000 training pixels per class once; fit each forest setting
    on a per-class subsample of them; score on the first 512 x 512 of the test volume."""
    import tifffile
    from sklearn.ensemble import RandomForestClassifier

    from pixlearn.classical.features import FeatureConfig, compute_features_at
    from pixlearn.classical.forest import compile_forest, predict_forest_labels
    from pixlearn.data.normalize import NormalizeConfig, compute_normalization, normalized_view
    from pixlearn.data.spacing import parse_spacing, relative_spacing

    features = FeatureConfig(spacing=relative_spacing(parse_spacing(SPACING)))
    rng = np.random.default_rng(0)

    def view(path: Path) -> Any:
        image = tifffile.imread(path)[..., None]
        return normalized_view(image, *compute_normalization(image, NormalizeConfig()))

    labels = tifffile.imread(VNC / "labels" / "stack1_train.tif")
    flat = labels.reshape(-1)
    picks = np.sort(np.concatenate([rng.choice(np.flatnonzero(flat == k), min(100_000, int((flat == k).sum())),
                                               replace=False) for k in range(len(CLASSES))]))
    coords = np.unravel_index(picks, labels.shape)
    train = view(VNC / "images" / "stack1_train.tif")
    parts = []
    for y0 in range(0, labels.shape[1], 256):  # blocks of rows: bounded filter memory
        inside = np.flatnonzero((coords[1] >= y0) & (coords[1] < y0 + 256))
        core = (slice(0, labels.shape[0]), slice(y0, y0 + 256), slice(0, labels.shape[2]))
        local = (coords[0][inside], coords[1][inside] - y0, coords[2][inside])
        parts.append((inside, compute_features_at(train, core, local, features).T))
    x = np.empty((len(picks), parts[0][1].shape[1]), np.float32)
    for inside, rows in parts:
        x[inside] = rows
    y = flat[picks].astype(np.int64)
    region = (slice(0, 5), slice(0, 512), slice(0, 512))
    grid = tuple(np.indices((5, 512, 512)).reshape(3, -1))
    t = np.ascontiguousarray(compute_features_at(view(VNC / "images" / "stack1_test.tif"), region, grid, features).T)
    truth = tifffile.imread(VNC / "labels" / "stack1_test.tif")[region].reshape(-1)
    results = []
    for cfg in configs:
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == k), min(cfg["per_class"], int((y == k).sum())),
                                                  replace=False) for k in range(len(CLASSES))]))
        rf = RandomForestClassifier(n_estimators=cfg["trees"], max_depth=cfg["depth"], class_weight="balanced",
                                    n_jobs=-1, random_state=0)
        start = time.perf_counter()
        rf.fit(x[keep], y[keep])
        fit_s = time.perf_counter() - start
        compiled = compile_forest(rf)
        start = time.perf_counter()
        pred = rf.classes_[predict_forest_labels(compiled, t)]
        forest_s = time.perf_counter() - start
        ious = _ious(pred, truth)
        results.append({**cfg, "fit_s": fit_s, "forest_mvox_s": len(t) / 1e6 / forest_s,
                        "miou": float(np.nanmean(ious)), "iou_membrane": ious[1],
                        "nodes_per_tree": float(np.mean([e.tree_.node_count for e in rf.estimators_]))})
        print(json.dumps(results[-1]), flush=True)
    return results


SWEEP = [{"trees": t, "depth": d, "per_class": 20_000} for t, d in
         ((32, 14), (16, 14), (16, 12), (24, 12), (32, 10), (32, 18), (32, None), (100, None))]
SWEEP += [{"trees": 32, "depth": 14, "per_class": n} for n in (5_000, 50_000)]


def _table(ours: dict[str, Any] | None, baseline: dict[str, Any] | None, memory: str) -> None:
    rows: list[tuple[str, Any, Any]] = []
    if ours:
        peak = max(ours["train_peak_rss_mib"], ours["predict_peak_rss_mib"])
        rows += [("train s (full volume)", ours["train_s"], None), ("predict MVox/s", ours["predict_mvox_s"], None),
                 ("predict MVox per CPU s", ours["predict_command_mvox_per_cpu_s"], None), ("peak RSS MiB", peak, None),
                 ("mean IoU", ours["miou"], None)]
        rows += [(f"IoU {c}", ours["iou"][c], None) for c in CLASSES]
    if baseline:
        today, crop = baseline["today"], baseline["ours_on_crop"]
        rows += [("crop: fit s", crop["fit_s"], today["fit_s"]), ("crop: mean IoU", crop["miou"], today["miou"])]
        rows += [(f"crop: IoU {c}", crop["iou"][c], today["iou"][c]) for c in CLASSES]
        rows += [("crop: peak RSS MiB", crop["peak_rss_mib"], today["peak_rss_mib"]),
                 ("engine of before MVox/s", None, today["old_engine_mvox_s"])]
    print_table("VNC ssTEM: random forest, --memory " + memory, rows, ("metric", "ours", "today"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", default="2GiB", help="budget of train and predict")
    parser.add_argument("--baseline-crop", type=int, default=96, help="in-plane crop of the train volume for today's defaults")
    parser.add_argument("--skip-ours", action="store_true", help="keep the figures of ours already in the results")
    parser.add_argument("--skip-baseline", action="store_true", help="keep the baseline already in the results")
    parser.add_argument("--sweep", action="store_true", help="also IoU against depth, trees and pixels per class")
    args = parser.parse_args(argv)
    if not (VNC / "images" / "stack1_train.tif").exists():
        print(f"skipped: {VNC} is not there")
        return 0
    figures: dict[str, Any] = {}
    ours = baseline = None
    if not args.skip_ours:
        before = host_facts()
        with tempfile.TemporaryDirectory(prefix="vnc_rf_") as tmp:
            ours = run_ours(Path(tmp), args.memory)
        print(ours.pop("log"))
        figures.update({
            "vnc_rf_train_s": ours["train_s"],
            "vnc_rf_predict_mvox_s": ours["predict_mvox_s"],
            "vnc_rf_peak_rss_mib": max(ours["train_peak_rss_mib"], ours["predict_peak_rss_mib"]),
            "vnc_rf_iou_membrane": ours["iou"]["membrane"],
            "vnc_rf_details": {"memory": args.memory, "spacing_nm": SPACING, **ours, "cpu": before,
                               "load_average_after": host_facts().get("load_average")},
        })
    if not args.skip_baseline:
        baseline = run_baseline(args.baseline_crop)
        figures["vnc_rf_baseline"] = {**baseline, "cpu": host_facts()}
    if args.sweep:
        figures["vnc_rf_sweep"] = {"rows": run_isolated(_sweep_one, SWEEP)[0], "cpu": host_facts()}
    _table(ours, baseline, args.memory)
    write_results("pixel_classifier", figures, merge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
