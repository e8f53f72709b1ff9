"""Benchmark: pixlearn's pixel classifier vs scikit-image features + scikit-learn random forest.

The headline is **defaults against defaults**, as a user meets them, on the same labelled pixels
(seeded scribbles, ~2% of the training pixels) and the same test images:

* pixlearn: ``FeatureConfig()`` (the ilastik filter bank) and ``ClassifierConfig()`` (its forest
  defaults and pixels per class), ``PixelClassifier.predict_labels``;
* the peer: ``skimage.feature.multiscale_basic_features`` with its defaults and scikit-learn's
  ``RandomForestClassifier()`` defaults (100 trees grown until pure) with
  ``class_weight="balanced"``, ``n_jobs=-1`` and a seed, fitted on every labelled pixel.

"Equal or better test IoU" is the condition of the speed-up, so the IoU of both is printed next
to it. A second figure (``*_same_trees``) gives pixlearn the peer's trees and pixels, so that the
speed of the same work is not hidden. Two data sets:

* 2D: ``shared/data/isbi2012_em`` (train/test split from ``split.json``; 512x512 EM sections,
  membrane = class 1). Scored on the test split: membrane IoU and pixel accuracy.
* 3D: a synthetic 64x256x256 volume of blurred noisy balls (made here, seeded); trained on
  scribbles of one volume, scored on a second volume from another seed.

"End to end" is features + prediction of the test images (fitting is reported separately; CPU
seconds beside the wall seconds). Each method runs in a fresh process (``run_isolated``) so its
peak RSS is its own. ``--repeats N`` runs everything N times: the figures are the medians, the
figures of each run are under ``runs``.

Run: ``.venv/bin/python benchmarks/pixel_classifier.py`` (``--quick`` for a smaller check,
``--repeats 3`` for medians). Writes ``benchmarks/results/pixel_classifier.json``, merged (the
``vnc_rf_*`` keys of ``vnc_rf.py`` are kept).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, cpu_flags, host_facts, print_table, run_isolated, write_results

ISBI = DATA / "isbi2012_em"
IGNORE = -1


# ------------------------------------------------------------------------------------ data


def _strokes(labels: np.ndarray, fraction: float, seed: int, length: int = 24) -> np.ndarray:
    """Scribbles: straight strokes from random points, each cut where it leaves its start class.

    Returns int64 targets with the class of each stroke pixel and IGNORE elsewhere, about
    `fraction` of all pixels labelled.
    """
    rng = np.random.default_rng(seed)
    targets = np.full(labels.shape, IGNORE, np.int64)
    goal = int(fraction * labels.size)
    steps = np.arange(length)
    while (targets != IGNORE).sum() < goal:
        n = max(16, (goal - int((targets != IGNORE).sum())) // (length // 2))
        start = np.stack([rng.integers(0, s, n) for s in labels.shape], axis=1)
        direction = rng.normal(size=(n, labels.ndim))
        if labels.ndim == 3:
            direction[:, 0] *= 0.3  # flatter strokes across planes
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        points = np.rint(start[:, None, :] + steps[None, :, None] * direction[:, None, :]).astype(np.int64)
        inside = np.all((points >= 0) & (points < np.array(labels.shape)), axis=2)
        start_class = labels[tuple(start.T)]
        clipped = np.clip(points, 0, np.array(labels.shape) - 1)
        same = labels[tuple(np.moveaxis(clipped, 2, 0))] == start_class[:, None]
        keep = np.cumprod(inside & same, axis=1).astype(bool)  # stop at the first change
        idx = tuple(np.moveaxis(points[keep], 1, 0))
        targets[idx] = np.broadcast_to(start_class[:, None], keep.shape)[keep]
    return targets


def load_isbi() -> dict[str, Any]:
    import tifffile

    split = json.loads((ISBI / "split.json").read_text())
    read = lambda name, sub: tifffile.imread(ISBI / sub / f"{name}.tif")
    train = [read(n, "images") for n in split["train"]]
    train_labels = [read(n, "labels").astype(np.int64) for n in split["train"]]
    test = [read(n, "images") for n in split["test"]]
    test_labels = [read(n, "labels").astype(np.int64) for n in split["test"]]
    targets = [_strokes(lab, 0.02, seed=i) for i, lab in enumerate(train_labels)]
    return {"train": train, "targets": targets, "test": test, "truth": test_labels}


def synthetic_volume(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blurred bright balls of varied size and brightness, uneven background, noise; uint16."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int64)
    n_balls = int(np.prod(shape) / 12000)
    centres = np.stack([rng.uniform(0, s, n_balls) for s in shape], 1)
    radii = rng.uniform(4.0, 10.0, n_balls)
    brightness = rng.uniform(0.5, 1.0, n_balls)
    signal = np.zeros(shape, np.float32)
    for c, r, b in zip(centres, radii, brightness):
        lo = np.maximum(0, np.floor(c - r).astype(int))
        hi = np.minimum(shape, np.ceil(c + r + 1).astype(int))
        grid = np.ogrid[tuple(slice(a, z) for a, z in zip(lo, hi))]
        ball = sum(((g - ci) / (ri)) ** 2 for g, ci, ri in zip(grid, c, (r * 0.6, r, r))) <= 1.0
        labels[tuple(slice(a, z) for a, z in zip(lo, hi))][ball] = 1
        signal[tuple(slice(a, z) for a, z in zip(lo, hi))][ball] = b
    background = ndi.gaussian_filter(rng.random(shape).astype(np.float32), 20) * 0.6
    image = ndi.gaussian_filter(signal, (0.8, 1.2, 1.2)) + background
    image = rng.poisson(image * 200.0).astype(np.float32) + rng.normal(0, 8.0, shape).astype(np.float32)
    return np.clip(image + 100.0, 0, 65535).astype(np.uint16), labels


def load_3d(shape: tuple[int, int, int]) -> dict[str, Any]:
    train, train_labels = synthetic_volume(shape, seed=1)
    test, truth = synthetic_volume(shape, seed=2)
    targets = _strokes(train_labels, 0.02, seed=3)
    return {"train": [train], "targets": [targets], "test": [test], "truth": [truth]}


# -------------------------------------------------------------------------------- methods


def _scores(predictions: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, float]:
    pred = np.concatenate([p.ravel() for p in predictions])
    true = np.concatenate([t.ravel() for t in truth])
    inter = np.sum((pred == 1) & (true == 1))
    union = np.sum((pred == 1) | (true == 1))
    return float(inter / union), float(np.mean(pred == true))


def run_pixlearn(data: dict[str, Any], trees: dict[str, Any] | None) -> dict[str, Any]:
    """pixlearn's filter bank and forest: its defaults (`trees` ``None``: the forest settings and
    the pixels per class of ``ClassifierConfig()``), or the forest `trees` on every labelled pixel."""
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig, compute_features_block
    from pixlearn.classical.fit import fit_pixel_classifier

    feature_cfg = FeatureConfig()  # ilastik default set
    if trees is None:
        clf_cfg = ClassifierConfig()
    else:
        forest = ForestConfig(**{k: trees[k] for k in ("n_estimators", "max_depth", "min_samples_leaf", "max_features")})
        clf_cfg = ClassifierConfig(rf=forest, class_weight=trees["class_weight"], n_jobs=trees["n_jobs"],
                                   seed=trees["seed"], max_samples_per_class=None)  # every labelled pixel, as the peer
    images = [im[..., None] for im in data["train"]]
    start = time.perf_counter()
    model = fit_pixel_classifier(images, data["targets"], feature_cfg, clf_cfg)
    fit_s = time.perf_counter() - start
    # features alone (the same block-wise computation the prediction does), kernels loaded first
    small = tuple(slice(0, min(n, 32)) for n in data["test"][0].shape)
    compute_features_block(data["test"][0][..., None].astype(np.float32), small, feature_cfg, feature_axis="first")
    start = time.perf_counter()
    for im in data["test"]:
        full = tuple(slice(0, n) for n in im.shape)
        compute_features_block(im[..., None].astype(np.float32), full, feature_cfg, feature_axis="first")
    features_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    predictions = [model.predict_labels(im[..., None]) for im in data["test"]]
    end_to_end_s, end_to_end_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    iou, accuracy = _scores(predictions, data["truth"])
    rf = clf_cfg.rf
    return {
        "fit_s": fit_s, "features_s": features_s, "end_to_end_s": end_to_end_s, "end_to_end_cpu_s": end_to_end_cpu_s,
        "predict_s": end_to_end_s - features_s if end_to_end_s > features_s else None, "iou": iou, "accuracy": accuracy,
        "n_features": model.n_features, "n_train_pixels": model.training["n_pixels"],
        "settings": {"n_estimators": rf.n_estimators, "max_depth": rf.max_depth,
                     "max_samples_per_class": clf_cfg.max_samples_per_class},
    }


def run_peer(data: dict[str, Any], trees: dict[str, Any] | None) -> dict[str, Any]:
    """scikit-image's ``multiscale_basic_features`` (defaults) and scikit-learn's forest: its
    defaults with ``class_weight="balanced"``, ``n_jobs=-1`` (and a seed) when `trees` is ``None``."""
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def features(image: np.ndarray) -> np.ndarray:
        return multiscale_basic_features(image.astype(np.float32) / np.float32(image.max()))

    if trees is None:
        clf = RandomForestClassifier(class_weight="balanced", n_jobs=-1, random_state=0)
    else:
        clf = RandomForestClassifier(
            n_estimators=trees["n_estimators"], max_depth=trees["max_depth"],
            min_samples_leaf=trees["min_samples_leaf"], max_features=trees["max_features"],
            class_weight=trees["class_weight"], n_jobs=trees["n_jobs"], random_state=trees["seed"],
        )
    start = time.perf_counter()
    rows, labels = [], []
    for im, t in zip(data["train"], data["targets"]):
        f = features(im)
        mask = t != IGNORE
        rows.append(f[mask])
        labels.append(t[mask])
        del f
    clf.fit(np.concatenate(rows), np.concatenate(labels))
    fit_s = time.perf_counter() - start
    features_s = predict_s = 0.0
    predictions = []
    n_features = 0
    cpu = time.process_time()
    for im in data["test"]:
        start = time.perf_counter()
        f = features(im)
        features_s += time.perf_counter() - start
        n_features = f.shape[-1]
        start = time.perf_counter()
        proba = clf.predict_proba(f.reshape(-1, n_features))
        predictions.append(clf.classes_[np.argmax(proba, 1)].reshape(im.shape))
        predict_s += time.perf_counter() - start
        del f, proba
    end_to_end_cpu_s = time.process_time() - cpu
    iou, accuracy = _scores(predictions, data["truth"])
    return {
        "fit_s": fit_s, "features_s": features_s, "end_to_end_s": features_s + predict_s,
        "end_to_end_cpu_s": end_to_end_cpu_s, "predict_s": predict_s, "iou": iou, "accuracy": accuracy,
        "n_features": n_features, "n_train_pixels": int(sum(len(lab) for lab in labels)),
        "settings": {"n_estimators": clf.n_estimators, "max_depth": clf.max_depth, "max_samples_per_class": None},
    }


def _isolated(loader: Any, args: tuple[Any, ...], method: Any, trees: dict[str, Any] | None) -> dict[str, Any]:
    """`method` on the data of ``loader(*args)`` in a fresh process; its peak RSS added."""
    def job() -> dict[str, Any]:
        return method(loader(*args), trees)

    result, _, peak = run_isolated(job)
    return {**result, "peak_rss_mib": peak}


def _rate(mpix: float, seconds: float | None) -> float | None:
    return mpix / seconds if seconds else None


def _print(title: str, ours: dict[str, Any], peer: dict[str, Any], mpix: float) -> None:
    rows = [
        ("test pixels (M)", mpix, mpix),
        ("trees", ours["settings"]["n_estimators"], peer["settings"]["n_estimators"]),
        ("max depth", ours["settings"]["max_depth"], peer["settings"]["max_depth"]),
        ("features", ours["n_features"], peer["n_features"]),
        ("training pixels", ours["n_train_pixels"], peer["n_train_pixels"]),
        ("features MPix/s", mpix / ours["features_s"], mpix / peer["features_s"]),
        ("fit s", ours["fit_s"], peer["fit_s"]),
        ("predict MPix/s", _rate(mpix, ours["predict_s"]), _rate(mpix, peer["predict_s"])),
        ("end-to-end MPix/s", mpix / ours["end_to_end_s"], mpix / peer["end_to_end_s"]),
        ("end-to-end CPU s", ours["end_to_end_cpu_s"], peer["end_to_end_cpu_s"]),
        ("peak RSS MiB", ours["peak_rss_mib"], peer["peak_rss_mib"]),
        ("test IoU (class 1)", ours["iou"], peer["iou"]),
        ("pixel accuracy", ours["accuracy"], peer["accuracy"]),
    ]
    print_table(title, rows)


def _compare(name: str, loader: Any, args: tuple[Any, ...], trees: dict[str, Any]) -> dict[str, Any]:
    """Three fresh processes on one data set: pixlearn's defaults, the peer's defaults (scikit-learn's
    forest defaults: 100 trees grown until pure on every labelled pixel, which are also `trees`),
    and pixlearn with the peer's trees."""
    ours = _isolated(loader, args, run_pixlearn, None)
    peer = _isolated(loader, args, run_peer, None)
    same = _isolated(loader, args, run_pixlearn, trees)
    data = loader(*args)
    mpix = sum(im.size for im in data["test"]) / 1e6
    _print(f"pixel classifier {name}: defaults against defaults", ours, peer, mpix)
    _print(f"pixel classifier {name}: the same trees ({trees})", same, peer, mpix)
    return {"ours": ours, "peer": peer, "ours_same_trees": same, "mpix": mpix,
            "speedup": peer["end_to_end_s"] / ours["end_to_end_s"],
            "speedup_same_trees": peer["end_to_end_s"] / same["end_to_end_s"]}


def _figures(r2: dict[str, Any], r3: dict[str, Any]) -> dict[str, float]:
    """The flat figures of one run (each a number, so that runs have medians)."""
    figures: dict[str, float] = {}
    for dim, r in (("2d", r2), ("3d", r3)):
        ours, peer, same = r["ours"], r["peer"], r["ours_same_trees"]
        figures.update({
            f"speedup_{dim}": r["speedup"], f"speedup_{dim}_same_trees": r["speedup_same_trees"],
            f"test_iou_{dim}": ours["iou"], f"test_iou_{dim}_peer": peer["iou"],
            f"test_iou_{dim}_same_trees": same["iou"],
            f"test_accuracy_{dim}": ours["accuracy"], f"test_accuracy_{dim}_peer": peer["accuracy"],
            f"peak_rss_mib_{dim}": ours["peak_rss_mib"], f"peak_rss_mib_{dim}_peer": peer["peak_rss_mib"],
            f"peak_rss_mib_{dim}_same_trees": same["peak_rss_mib"],
            f"end_to_end_mpix_s_{dim}": r["mpix"] / ours["end_to_end_s"],
            f"end_to_end_mpix_s_{dim}_peer": r["mpix"] / peer["end_to_end_s"],
            f"end_to_end_mpix_s_{dim}_same_trees": r["mpix"] / same["end_to_end_s"],
            f"cpu_speedup_{dim}": peer["end_to_end_cpu_s"] / ours["end_to_end_cpu_s"],
            f"fit_s_{dim}": ours["fit_s"], f"fit_s_{dim}_peer": peer["fit_s"],
        })
    return figures


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(statistics.median(run[key] for run in runs)) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 training images, a 32x128x128 volume")
    parser.add_argument("--repeats", type=int, default=1, help="run everything N times; figures are medians")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # scikit-learn's RandomForestClassifier defaults (seeded), balanced, on all cores
    trees = {
        "n_estimators": 100, "max_depth": None, "min_samples_leaf": 1,
        "max_features": "sqrt", "class_weight": "balanced", "n_jobs": -1, "seed": 0,
    }
    loader_2d = _quick_isbi if args.quick else load_isbi
    shape_3d = (32, 128, 128) if args.quick else (64, 256, 256)
    runs, details = [], {}
    for _ in range(max(1, args.repeats)):
        r2 = _compare("2D ISBI 2012 EM", loader_2d, (), trees)
        r3 = _compare(f"3D synthetic {shape_3d}", load_3d, (shape_3d,), trees)
        runs.append(_figures(r2, r3))
        details = {"details_2d": r2, "details_3d": r3}
    figures: dict[str, Any] = {
        **_medians(runs), **details, "runs": runs, "repeats": len(runs),
        "trees": trees,  # the peer's defaults, and pixlearn's forest in the *_same_trees figures
        "quick": args.quick, "targets": {"speedup_2d": 5.0, "speedup_3d": 20.0},
        # random-forest prediction: pixlearn.classical.forest's numba kernels, or scikit-learn's trees
        "forest_engine": "numba" if importlib.util.find_spec("numba") else "sklearn",
        "cpu_flags": cpu_flags(), "cpu_model": host_facts().get("model"),
        "precision": "float32 features both; pixlearn's forest thresholds rounded down to float32 (exact)",
    }
    m = figures
    print(f"\nend-to-end speedup, defaults against defaults (median of {len(runs)}): "
          f"2D {m['speedup_2d']:.2f}x (target 5x; IoU {m['test_iou_2d']:.4f} vs {m['test_iou_2d_peer']:.4f}), "
          f"3D {m['speedup_3d']:.2f}x (target 20x; IoU {m['test_iou_3d']:.4f} vs {m['test_iou_3d_peer']:.4f})")
    print(f"same trees: 2D {m['speedup_2d_same_trees']:.2f}x (IoU {m['test_iou_2d_same_trees']:.4f}), "
          f"3D {m['speedup_3d_same_trees']:.2f}x (IoU {m['test_iou_3d_same_trees']:.4f})")
    write_results("pixel_classifier" + ("_quick" if args.quick else ""), figures, merge=True)  # keeps vnc_rf_*
    return 0


def _quick_isbi() -> dict[str, Any]:
    data = load_isbi()
    return {"train": data["train"][:5], "targets": data["targets"][:5], "test": data["test"][:2], "truth": data["truth"][:2]}


if __name__ == "__main__":
    sys.exit(main())
