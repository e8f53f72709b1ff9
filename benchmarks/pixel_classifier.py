"""Benchmark: pixlearn's pixel classifier vs scikit-image features + scikit-learn random forest.

Same work for both, in one run: train a random forest with the same tree settings on the same
labelled pixels (seeded scribbles, ~2% of the training pixels), then compute features and predict
the test images. Two data sets:

* 2D: ``shared/data/isbi2012_em`` (train/test split from ``split.json``; 512x512 EM sections,
  membrane = class 1). Scored on the test split: membrane IoU and pixel accuracy.
* 3D: a synthetic 64x256x256 volume of blurred noisy balls (made here, seeded); trained on
  scribbles of one volume, scored on a second volume from another seed.

pixlearn uses its default (ilastik) filter bank; the peer uses
``skimage.feature.multiscale_basic_features`` with its defaults. "End to end" is features +
prediction of the test images (fitting is reported separately). Each method runs in a fresh
process (``run_isolated``) so its peak RSS is its own.

Run: ``.venv/bin/python benchmarks/pixel_classifier.py`` (``--quick`` for a smaller check).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, print_table, run_isolated, write_results

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


def run_pixlearn(data: dict[str, Any], trees: dict[str, Any]) -> dict[str, Any]:
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig, compute_features_block
    from pixlearn.classical.fit import fit_pixel_classifier

    feature_cfg = FeatureConfig()  # ilastik default set
    forest = ForestConfig(**{k: trees[k] for k in ("n_estimators", "max_depth", "min_samples_leaf", "max_features")})
    clf_cfg = ClassifierConfig(rf=forest, class_weight=trees["class_weight"], n_jobs=trees["n_jobs"], seed=trees["seed"],
                               max_samples_per_class=None)  # every labelled pixel, as the peer
    images = [im[..., None] for im in data["train"]]
    start = time.perf_counter()
    model = fit_pixel_classifier(images, data["targets"], feature_cfg, clf_cfg)
    fit_s = time.perf_counter() - start
    # features alone (the same block-wise computation the prediction does)
    start = time.perf_counter()
    for im in data["test"]:
        full = tuple(slice(0, n) for n in im.shape)
        compute_features_block(im[..., None].astype(np.float32), full, feature_cfg, feature_axis="first")
    features_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = [model.predict_labels(im[..., None]) for im in data["test"]]
    end_to_end_s = time.perf_counter() - start
    iou, accuracy = _scores(predictions, data["truth"])
    return {
        "fit_s": fit_s, "features_s": features_s, "end_to_end_s": end_to_end_s,
        "predict_s": max(end_to_end_s - features_s, 1e-9), "iou": iou, "accuracy": accuracy,
        "n_features": model.n_features, "n_train_pixels": model.training["n_pixels"],
    }


def run_peer(data: dict[str, Any], trees: dict[str, Any]) -> dict[str, Any]:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def features(image: np.ndarray) -> np.ndarray:
        return multiscale_basic_features(image.astype(np.float32) / np.float32(image.max()))

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
    iou, accuracy = _scores(predictions, data["truth"])
    return {
        "fit_s": fit_s, "features_s": features_s, "end_to_end_s": features_s + predict_s,
        "predict_s": predict_s, "iou": iou, "accuracy": accuracy,
        "n_features": n_features, "n_train_pixels": int(sum(len(lab) for lab in labels)),
    }


def _compare(name: str, loader: Any, args: tuple[Any, ...], trees: dict[str, Any]) -> dict[str, Any]:
    def job(method: Any) -> dict[str, Any]:
        return method(loader(*args), trees)

    ours, _, ours_rss = run_isolated(job, run_pixlearn)
    peer, _, peer_rss = run_isolated(job, run_peer)
    data = loader(*args)
    mpix = sum(im.size for im in data["test"]) / 1e6
    ours["peak_rss_mib"], peer["peak_rss_mib"] = ours_rss, peer_rss
    rows = [
        ("test pixels (M)", mpix, mpix),
        ("features", ours["n_features"], peer["n_features"]),
        ("training pixels", ours["n_train_pixels"], peer["n_train_pixels"]),
        ("features MPix/s", mpix / ours["features_s"], mpix / peer["features_s"]),
        ("fit s", ours["fit_s"], peer["fit_s"]),
        ("predict MPix/s", mpix / ours["predict_s"], mpix / peer["predict_s"]),
        ("end-to-end MPix/s", mpix / ours["end_to_end_s"], mpix / peer["end_to_end_s"]),
        ("peak RSS MiB", ours_rss, peer_rss),
        ("test IoU (class 1)", ours["iou"], peer["iou"]),
        ("pixel accuracy", ours["accuracy"], peer["accuracy"]),
    ]
    print_table(f"pixel classifier {name}: pixlearn vs skimage+sklearn ({trees})", rows)
    return {"ours": ours, "peer": peer, "mpix": mpix, "speedup": peer["end_to_end_s"] / ours["end_to_end_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 training images, a 32x128x128 volume")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    trees = {
        "n_estimators": args.n_estimators, "max_depth": args.max_depth, "min_samples_leaf": 1,
        "max_features": "sqrt", "class_weight": "balanced", "n_jobs": -1, "seed": 0,
    }
    loader_2d = _quick_isbi if args.quick else load_isbi
    shape_3d = (32, 128, 128) if args.quick else (64, 256, 256)
    r2 = _compare("2D ISBI 2012 EM", loader_2d, (), trees)
    r3 = _compare(f"3D synthetic {shape_3d}", load_3d, (shape_3d,), trees)
    import importlib.util

    figures = {
        "trees": trees,
        # random-forest prediction: pixlearn.classical.forest's numba kernels, or scikit-learn's trees
        "forest_engine": "numba" if importlib.util.find_spec("numba") else "sklearn",
        "quick": args.quick,
        "speedup_2d": r2["speedup"],
        "speedup_3d": r3["speedup"],
        "test_iou_2d": r2["ours"]["iou"],
        "test_iou_2d_peer": r2["peer"]["iou"],
        "test_accuracy_2d": r2["ours"]["accuracy"],
        "test_accuracy_2d_peer": r2["peer"]["accuracy"],
        "test_iou_3d": r3["ours"]["iou"],
        "test_iou_3d_peer": r3["peer"]["iou"],
        "peak_rss_mib_2d": r2["ours"]["peak_rss_mib"],
        "peak_rss_mib_2d_peer": r2["peer"]["peak_rss_mib"],
        "peak_rss_mib_3d": r3["ours"]["peak_rss_mib"],
        "peak_rss_mib_3d_peer": r3["peer"]["peak_rss_mib"],
        "end_to_end_mpix_s_2d": r2["mpix"] / r2["ours"]["end_to_end_s"],
        "end_to_end_mpix_s_2d_peer": r2["mpix"] / r2["peer"]["end_to_end_s"],
        "end_to_end_mpix_s_3d": r3["mpix"] / r3["ours"]["end_to_end_s"],
        "end_to_end_mpix_s_3d_peer": r3["mpix"] / r3["peer"]["end_to_end_s"],
        "details_2d": r2,
        "details_3d": r3,
    }
    print(
        f"\nend-to-end speedup: 2D {r2['speedup']:.2f}x (target 3x), 3D {r3['speedup']:.2f}x (target 10x)"
    )
    write_results("pixel_classifier" + ("_quick" if args.quick else ""), figures, merge=True)  # keeps vnc_rf_*
    return 0


def _quick_isbi() -> dict[str, Any]:
    data = load_isbi()
    return {"train": data["train"][:5], "targets": data["targets"][:5], "test": data["test"][:2], "truth": data["truth"][:2]}


if __name__ == "__main__":
    sys.exit(main())
