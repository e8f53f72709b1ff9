"""Benchmark: object classification of red blood cells (pixlearn) vs HOG + colour + random forest.

Data: ``shared/data/chula_rbc12_crops`` (64x64 RGB crops, 12 morphologies, split by source image
as in its ``labels.csv``; 6,975 train / 3,038 test). The label of a crop is its centre cell's.

* **pixlearn objects + RF**: the centre cell is segmented by a fixed rule (:func:`segment_centre`:
  Otsu threshold of the green channel, where haemoglobin absorbs most, cells darker than the
  background; holes filled, a 1-px opening, touching cells split by a distance-transform
  watershed, the region under the centre pixel or, when the centre is background, the one
  nearest to it). Its measurements
  (:func:`pixlearn.classical.object_features`, default settings) train
  :func:`pixlearn.classical.fit_object_classifier` with a 500-tree random forest (class-balanced,
  pixlearn's default); :meth:`ObjectClassifier.predict_table` classifies the measurements of all test cells at once.
* **peer HOG + RF**: what a scikit-learn user would write: ``skimage.feature.hog`` of the grey crop
  (9 orientations, 8x8-px cells, 2x2 blocks) + a 16-bin histogram per colour channel, and
  ``RandomForestClassifier(n_estimators=500)``.
* **background-only control**: colour histograms and mean/std of the pixels outside every
  segmented cell, same forest. If it scores well on a class, a model can recognise that class by
  its smear (the README's warning: all elliptocytes come from their own batch of smears).
* **pixlearn CNN** (``--cnn-minutes``, default 30): :func:`pixlearn.nets.fit_image_classifier`
  from scratch on the RGB crops with the recipe of :func:`_classify_cnn.cnn_recipe` (residual
  CNN, warm-up + cosine to the time limit, class-balanced sampling, augmentation, label
  smoothing, best epoch by validation macro F1 on a stratified 15 % of the training crops).
* **peer plain small CNN**: 3 conv-ReLU-maxpool blocks, Adam at a constant learning rate, no
  augmentation, no balancing, the same minutes (:func:`_classify_cnn.run_small_cnn`).
* **CNN background-only control** (``--control-minutes``, default the CNN's): the same CNN recipe
  on crops whose middle (a 26 px disc and the segmented centre cell) is painted over with the
  background colour (:func:`_classify_cnn.mask_centre`): what the smear and the neighbours tell.

Forests use 2 jobs, networks 1 PyTorch thread (``--threads``; on the shared 2-core machine of
these figures, two OpenMP threads ran the classifier 5-10x slower than one: each barrier waits for
a descheduled thread), all seed 0; macro F1 and balanced accuracy on the whole test split. The
full run (``--cnn-minutes 30``) takes about 95 minutes: 3 x 30 of network training and 3 of forests. Run: ``.venv/bin/python benchmarks/classify.py`` (``--max-train N``
subsamples the training crops per class, ``--quick`` for 40 train / 20 test crops per class and a
minute per network, ``--parts cnn,small_cnn`` runs some parts only and merges their figures into
the existing ``results/classify.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _classify_cnn import mask_centre, run_cnn, run_small_cnn
from _common import DATA, RESULTS, write_results

ROOT_DATA = DATA / "chula_rbc12_crops"
N_TREES = 500
N_JOBS = 2
PARTS = ("forests", "cnn", "small_cnn", "cnn_control")


def segment_centre(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the centre cell (1) of an RGB crop, and the mask of all cells found.

    Otsu on the green channel (cells darker), holes filled, a 1-px opening; touching cells split
    by a watershed of the distance transform from its maxima (at least 7 px apart and 4 px deep);
    the region under the centre pixel, else the one nearest to it; a disc of radius 10 px when
    nothing is found.
    """
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    green = crop[..., 1].astype(np.float64)
    cells = green < threshold_otsu(green) if np.ptp(green) > 0 else np.zeros(green.shape, bool)
    cells = ndi.binary_opening(ndi.binary_fill_holes(cells), iterations=1)
    # split touching cells: watershed of the distance to the background from its maxima
    distance = ndi.distance_transform_edt(cells)
    peaks = peak_local_max(distance, min_distance=7, threshold_abs=4, labels=ndi.label(cells)[0])
    markers = np.zeros(cells.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    components = watershed(-distance, markers, mask=cells)
    n = int(components.max())
    centre = tuple(s // 2 for s in components.shape)
    chosen = components[centre]
    if chosen == 0 and n > 0:
        _, (rows, cols) = ndi.distance_transform_edt(components == 0, return_indices=True)
        chosen = components[rows[centre], cols[centre]]
    if chosen == 0:
        grid = np.indices(components.shape)
        disc = ((grid[0] - centre[0]) ** 2 + (grid[1] - centre[1]) ** 2) <= 100
        return disc.astype(np.int32), disc
    return (components == chosen).astype(np.int32), cells


def _load(root: Path, max_train: int | None, max_test: int | None) -> dict[str, Any]:
    from skimage.io import imread

    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    class_names = sorted({r["class_name"] for r in rows})
    data: dict[str, Any] = {"class_names": class_names}
    for split, cap in (("train", max_train), ("test", max_test)):
        chosen = [r for r in rows if r["split"] == split]
        if cap:
            per_class: dict[str, list[dict[str, str]]] = {}
            for r in sorted(chosen, key=lambda r: r["name"]):
                per_class.setdefault(r["class_name"], []).append(r)
            rng = np.random.default_rng(0)
            chosen = [r for c in class_names for r in
                      (list(rng.permutation(per_class[c]))[:cap] if len(per_class[c]) > cap else per_class[c])]
        data[split] = (
            [imread(root / "images" / r["class_name"] / f"{r['name']}.png")[..., :3] for r in chosen],
            np.array([class_names.index(r["class_name"]) for r in chosen], np.int64),
        )
    return data


def _hog_colour(crop: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray
    from skimage.feature import hog

    hog_features = hog(rgb2gray(crop), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
    colour = [np.histogram(crop[..., c], bins=16, range=(0, 256))[0] / crop[..., c].size for c in range(3)]
    return np.concatenate([hog_features, *colour])


def _background(crop: np.ndarray, cells: np.ndarray) -> np.ndarray:
    pixels = crop[~cells].astype(np.float64) if (~cells).any() else crop.reshape(-1, 3).astype(np.float64)
    colour = [np.histogram(pixels[:, c], bins=16, range=(0, 256))[0] / len(pixels) for c in range(3)]
    return np.concatenate([*colour, pixels.mean(axis=0), pixels.std(axis=0)])


def _forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=N_TREES, n_jobs=N_JOBS, random_state=0)


def segment_all(data: dict[str, Any]) -> dict[str, Any]:
    """The centre cell and all cells of every crop (:func:`segment_centre`), with the time it took."""
    start = time.perf_counter()
    train_seg = [segment_centre(c) for c in data["train"][0]]
    test_seg = [segment_centre(c) for c in data["test"][0]]
    return {"train": train_seg, "test": test_seg, "seconds": time.perf_counter() - start}


def run(data: dict[str, Any], segmentation: dict[str, Any]) -> dict[str, Any]:
    from pixlearn.classical import ClassifierConfig, ForestConfig, fit_object_classifier, object_features
    from pixlearn.metrics import classification_scores

    names = data["class_names"]
    train_crops, y_train = data["train"]
    test_crops, y_test = data["test"]
    results: dict[str, Any] = {"class_names": names, "n_train": len(y_train), "n_test": len(y_test)}
    train_seg, test_seg = segmentation["train"], segmentation["test"]
    results["segment_seconds"] = segmentation["seconds"]
    results["centre_cell_area_px_median"] = float(np.median([s[0].sum() for s in test_seg]))

    # ours: pixlearn object measurements + balanced random forest
    start = time.perf_counter()
    cfg = ClassifierConfig(rf=ForestConfig(n_estimators=N_TREES), n_jobs=N_JOBS)
    model = fit_object_classifier(
        [c / 255.0 for c in train_crops], [s[0] for s in train_seg], [{1: int(y)} for y in y_train],
        class_names=names, clf_cfg=cfg,
    )
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    # one table of all test cells, classified in one call (as ObjectClassifier.predict does per image)
    table = np.concatenate([object_features(c / 255.0, s[0], model.feature_cfg)[1] for c, s in zip(test_crops, test_seg, strict=True)])
    _, probabilities = model.predict_table(table)
    ours = classification_scores(y_test, probabilities=probabilities, class_names=names)
    results["objects_rf"] = {**ours.to_dict(), "fit_seconds": fit_seconds,
                             "predict_seconds": time.perf_counter() - start,
                             "n_features": len(model.feature_names)}
    importances = np.asarray(model.estimator.feature_importances_)
    results["objects_rf"]["top_features"] = [model.feature_names[i] for i in np.argsort(importances)[::-1][:10]]

    # peer: HOG + colour histograms + random forest
    start = time.perf_counter()
    features_train = np.stack([_hog_colour(c) for c in train_crops])
    peer = _forest().fit(features_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    peer_probabilities = peer.predict_proba(np.stack([_hog_colour(c) for c in test_crops]))
    peer_scores = classification_scores(y_test, probabilities=peer_probabilities, class_names=names)
    results["peer_hog_rf"] = {**peer_scores.to_dict(), "fit_seconds": fit_seconds,
                              "predict_seconds": time.perf_counter() - start}

    # control: the background alone (the smear, not the cell)
    start = time.perf_counter()
    control = _forest().fit(np.stack([_background(c, s[1]) for c, s in zip(train_crops, train_seg, strict=True)]), y_train)
    control_probabilities = control.predict_proba(
        np.stack([_background(c, s[1]) for c, s in zip(test_crops, test_seg, strict=True)]))
    control_scores = classification_scores(y_test, probabilities=control_probabilities, class_names=names)
    results["background_only_control"] = {**control_scores.to_dict(), "seconds": time.perf_counter() - start}
    return results


def _mean_without(values: list[float | None], index: int) -> float:
    """Mean of the defined `values` other than the one at `index`."""
    return float(np.mean([v for i, v in enumerate(values) if i != index and v is not None]))


def run_networks(data: dict[str, Any], segmentation: dict[str, Any] | None, parts: set[str],
                 args: argparse.Namespace) -> dict[str, Any]:
    """The CNN, the small-CNN peer and the CNN on masked crops, as `parts` asks."""
    import torch

    torch.set_num_threads(args.threads)
    names, train, test = data["class_names"], data["train"], data["test"]
    results: dict[str, Any] = {}
    if "cnn" in parts:
        results["cnn"] = run_cnn(train, test, names, args.cnn_minutes)
    if "small_cnn" in parts:
        results["peer_small_cnn"] = run_small_cnn(train, test, names, args.cnn_minutes)
    if "cnn_control" in parts and segmentation is not None:
        masked = {split: ([mask_centre(c, *s) for c, s in zip(data[split][0], segmentation[split], strict=True)],
                          data[split][1]) for split in ("train", "test")}
        minutes = args.cnn_minutes if args.control_minutes is None else args.control_minutes
        results["cnn_background_only_control"] = run_cnn(masked["train"], masked["test"], names, minutes)
    return results


def _cpu_info(threads: int) -> dict[str, Any]:
    """The CPU's model and vector flags (what decides the speed of the networks), threads, load."""
    info: dict[str, Any] = {"threads": threads, "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name") and "model" not in info:
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
            break
    return info


def _forest_figures(results: dict[str, Any], elliptocyte: int, args: argparse.Namespace) -> dict[str, Any]:
    ours, peer, control = results["objects_rf"], results["peer_hog_rf"], results["background_only_control"]
    return {
        "objects_rf_macro_f1": ours["macro_f1"],
        "objects_rf_balanced_accuracy": ours["balanced_accuracy"],
        "peer_hog_rf_macro_f1": peer["macro_f1"],
        "peer_hog_rf_balanced_accuracy": peer["balanced_accuracy"],
        "objects_rf_macro_f1_without_elliptocyte": _mean_without(ours["f1"], elliptocyte),
        "peer_hog_rf_macro_f1_without_elliptocyte": _mean_without(peer["f1"], elliptocyte),
        "background_only_macro_f1": control["macro_f1"],
        "background_only_elliptocyte_f1": control["f1"][elliptocyte],
        "train_subsample": (f"at most {args.max_train} training crops per class (seeded)"
                            if args.max_train else "none: all training crops"),
        "segmentation_rule": "Otsu on the green channel (cells darker), fill holes, 1-px opening, "
                             "distance-transform watershed (maxima >= 7 px apart, >= 4 px deep), "
                             "region under the centre pixel (else nearest to it)",
        "segmentation_note": "the watershed split (min_distance 7 vs 10 vs none) was chosen on the "
                             "--quick subset (20 test crops per class): a mild selection on test data",
        "trees": N_TREES,
        "forest_jobs": N_JOBS,
    }


def _network_figures(results: dict[str, Any], elliptocyte: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key, prefix in (("cnn", "cnn"), ("peer_small_cnn", "peer_small_cnn"),
                        ("cnn_background_only_control", "background_only_cnn")):
        if key in results:
            r = results[key]
            figures.update({f"{prefix}_macro_f1": r["macro_f1"], f"{prefix}_balanced_accuracy": r["balanced_accuracy"],
                            f"{prefix}_train_minutes": r["train_minutes"],
                            f"{prefix}_elliptocyte_f1": r["f1"][elliptocyte],
                            f"{prefix}_macro_f1_without_elliptocyte": _mean_without(r["f1"], elliptocyte)})
    if "cnn" in results:
        figures["cnn_note"] = (f"trained for {results['cnn']['train_minutes']:.1f} wall minutes "
                               f"({results['cnn']['fit_cpu_seconds'] / 60:.1f} CPU minutes) on a shared CPU; the "
                               "default budget is 30 minutes (--cnn-minutes 30, width 32 instead of 16)")
    return figures


def _merged(figures: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """`figures` over the figures of the existing ``results/classify.json`` (parts not run are kept)."""
    path = RESULTS / "classify.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    for key in ("machine", "date", "not_done", "threads"):  # "threads": the forests' jobs before "forest_jobs"
        old.pop(key, None)
    merged = {**old, **figures}
    merged["details"] = {**old.get("details", {}), **details}
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT_DATA, help="the chula_rbc12_crops folder")
    parser.add_argument("--max-train", type=int, default=None, help="training crops per class (default: all)")
    parser.add_argument("--quick", action="store_true", help="40 train / 20 test crops per class, a minute per "
                        "network, no JSON")
    parser.add_argument("--cnn-minutes", type=float, default=30.0, help="training budget of each network")
    parser.add_argument("--control-minutes", type=float, default=None, help="of the masked-crop CNN (default: "
                        "--cnn-minutes)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads of the networks")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"--parts: unknown {sorted(parts - set(PARTS))}; use {','.join(PARTS)}")
    if not (args.data / "labels.csv").exists():
        print(f"no data at {args.data}: skipped")
        return 0
    if args.quick:
        args.cnn_minutes = min(args.cnn_minutes, 1.0)
    start = time.perf_counter()
    data = _load(args.data, 40 if args.quick else args.max_train, 20 if args.quick else None)
    load_seconds = time.perf_counter() - start
    cpu_start = _cpu_info(args.threads)
    segmentation = segment_all(data) if parts & {"forests", "cnn_control"} else None
    results = run(data, segmentation) if "forests" in parts and segmentation is not None else {}
    networks = run_networks(data, segmentation, parts, args)
    total_minutes = (time.perf_counter() - start) / 60.0
    elliptocyte = data["class_names"].index("elliptocyte")
    _print(results, networks, elliptocyte)
    if args.quick:
        return 0
    figures = _forest_figures(results, elliptocyte, args) if results else {}
    figures.update(_network_figures(networks, elliptocyte))
    figures.update({"torch_threads": args.threads, "cpu": {**cpu_start, "load_average_end": list(os.getloadavg())},
                    "load_seconds": load_seconds, f"total_minutes_{'_'.join(sorted(parts))}": total_minutes})
    write_results("classify", _merged(figures, {**results, **networks}))
    return 0


def _print(results: dict[str, Any], networks: dict[str, Any], elliptocyte: int) -> None:
    rows = [(name, r["macro_f1"], r["balanced_accuracy"], r.get("macro_roc_auc"), r["f1"][elliptocyte])
            for name, r in [("objects+RF", results.get("objects_rf")), ("HOG+RF (peer)", results.get("peer_hog_rf")),
                            ("background forest (control)", results.get("background_only_control")),
                            ("pixlearn CNN", networks.get("cnn")), ("small CNN (peer)", networks.get("peer_small_cnn")),
                            ("CNN on masked crops (control)", networks.get("cnn_background_only_control"))]
            if r is not None]
    print(f"\n{'method':<30} {'macro F1':>9} {'bal. acc':>9} {'ROC AUC':>9} {'ellipto F1':>10}")
    for name, f1, balanced, auc, ellipto in rows:
        print(f"{name:<30} {f1:9.3f} {balanced:9.3f} {auc if auc is None else round(auc, 3)!s:>9} {ellipto:10.3f}")
    for key in ("cnn", "peer_small_cnn", "cnn_background_only_control"):
        if key in networks:
            print(f"{key}: {networks[key]['train_minutes']:.1f} training minutes")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
