"""Recipe ablation on DSB2018 instances: each recipe change measured on its own, at equal minutes.

Variants (``--variants``, default all four): ``baseline`` (the training of ``networks.py``),
``colour`` (+ colour augmentation: ``AugmentConfig.colour`` at strength 1), ``scale`` (+ scale
normalisation: ``TrainConfig.target_diameter``, patches zoomed by up to x1.25) and ``both``. Each
trains for ``--minutes`` from scratch with ``--seed``, and is scored on the test split with the
analysis of ``_dsb2018.py`` (pooled AP@0.5 and AP@0.75, AP@0.5 per image group). Variants trained
with scale normalisation predict with the diameter estimated in two passes
(:func:`pixlearn.predict.rescale.estimate_diameter` with ``passes=2``), and are also scored with the
one pass of ``pixlearn predict --diameter auto`` (``*_one_pass``) and with each test image's true median diameter
(``*_true_diameter``), which separates what training gained from what the estimate loses.

DSB2018 is read as ``networks.py`` reads it: the mixed set turned grey, so the hue and saturation
parts of the colour augmentation have nothing to act on here (brightness, contrast, gamma and blur
do).

Run (the lead's full ablation, about 4 x 30 training minutes plus scoring on 2 CPU cores)::

    .venv/bin/python benchmarks/recipe.py --minutes 30 --seed 0
    .venv/bin/python benchmarks/recipe.py --minutes 30 --seed 1 --variants baseline   # the noise

``--quick``: 40 training and 12 test images, 0.25 minutes a variant (a smoke run). Figures go to
``benchmarks/results/recipe.json`` (``recipe_quick.json``), one entry per ``variant/seed``; runs
add their entries to those already in the file.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, write_results
from _dsb2018 import GROUPS, analyse, load_split, median_diameter
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.data.pairs import Pair, to_grey
from pixlearn.predict import apply_model

VARIANTS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False),
    "colour": (True, False),
    "scale": (False, True),
    "both": (True, True),
}
"""Variant name: (colour augmentation, scale normalisation)."""


def train_config(minutes: float, seed: int, colour: bool, target: float | str | None) -> Any:
    """The training set-up of ``networks.py`` (patch 128, batch 8, lr 2e-3, no early stop), plus the variant's."""
    from pixlearn.nets.augment_config import COLOUR_ON, AugmentConfig
    from pixlearn.nets.config import TrainConfig

    augmentation = AugmentConfig(colour=COLOUR_ON) if colour else AugmentConfig()
    return TrainConfig(epochs=10_000, steps_per_epoch=50, batch_size=8, patch_shape=(128, 128), lr=2e-3,
                       time_limit_s=minutes * 60.0, patience=0, seed=seed, val_patches=48,
                       augmentation=augmentation, target_diameter=target)


def predict_all(model: Any, images: list[np.ndarray], diameters: list[float | str] | None,
                passes: int = 2) -> list[np.ndarray]:
    """Instance labels of each image; with `diameters`, resized as ``predict --diameter`` does
    (``"auto"``: estimated in `passes` passes)."""
    from pixlearn.predict.rescale import scale_for

    if diameters is None:
        return [np.asarray(apply_model(model, image)) for image in images]
    return [np.asarray(apply_model(scale_for(model, image, d, passes=passes), image))
            for image, d in zip(images, diameters)]


def scores(test: list[Pair], groups: list[str], predictions: list[np.ndarray]) -> dict[str, Any]:
    """Pooled AP@0.5 and AP@0.75, per-image AP@0.5, fluorescence and per-group AP@0.5."""
    figures, analysis = analyse(test, groups, predictions)
    out = {key.removeprefix("dsb2018_"): figures[key] for key in
           ("dsb2018_ap50", "dsb2018_ap75", "dsb2018_ap50_avg", "dsb2018_ap50_fluo", "dsb2018_mean_matched_iou")}
    out["groups"] = {g: analysis.by_group[g].ap50 for g in GROUPS if g in analysis.by_group}
    return out


def run_variant(name: str, args: argparse.Namespace, train: list[Pair], test: list[Pair],
                groups: list[str]) -> dict[str, Any]:
    """Train one variant for ``args.minutes`` and score it on the test split."""
    from pixlearn.nets.fit import fit_network

    colour, scale = VARIANTS[name]
    cfg = train_config(args.minutes, args.seed, colour, args.object_diameter if scale else None)
    start = time.perf_counter()
    model = fit_network([p.image for p in train], [p.labels for p in train], "instances", train_config=cfg,
                        normalization=NormalizeConfig(polarity=args.polarity))
    minutes = (time.perf_counter() - start) / 60.0
    images = [to_grey(p.image) for p in test]
    entry: dict[str, Any] = {"variant": name, "seed": args.seed, "train_minutes": minutes,
                             "epochs": model.history.get("epochs"), "object_diameter": model.object_diameter,
                             "target_diameter": model.train_config.target_diameter}
    entry.update(scores(test, groups, predict_all(model, images, ["auto"] * len(images) if scale else None)))
    if scale:
        truth = [median_diameter(p.labels) or "auto" for p in test]
        true_scores = scores(test, groups, predict_all(model, images, truth))
        entry.update({f"{key}_true_diameter": value for key, value in true_scores.items()})
        one_pass = scores(test, groups, predict_all(model, images, ["auto"] * len(images), passes=1))
        entry.update({f"{key}_one_pass": value for key, value in one_pass.items()})
    return entry


def _row(entry: dict[str, Any]) -> str:
    groups = entry.get("groups", {})
    cells = [f"{entry['variant']}/{entry['seed']}", entry["ap50"], entry["ap75"],
             *(groups.get(g) for g in GROUPS), entry.get("ap50_one_pass"), entry.get("ap50_true_diameter"),
             entry["train_minutes"]]
    return " ".join(f"{c:>10.3f}" if isinstance(c, float) else f"{'-' if c is None else c:>10}" for c in cells)


def print_table(entries: list[dict[str, Any]]) -> None:
    """The ablation table: pooled AP@0.5 and AP@0.75, AP@0.5 per group, with the true diameter, minutes."""
    names = ["variant", "AP50", "AP75", *(g[:10] for g in GROUPS), "AP50@1pass", "AP50@true", "minutes"]
    print("\n== recipe ablation on DSB2018 (pooled AP; groups AP@0.5; scale variants: AP50@1pass with the "
          "first pass's diameter, AP50@true at the true diameter)")
    print(" ".join(f"{n:>10}" for n in names))
    for entry in entries:
        print(_row(entry))
    sys.stdout.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training minutes per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma separated, of " + ", ".join(VARIANTS))
    parser.add_argument("--object-diameter", default="auto", help="target diameter of the scale variants (px or auto)")
    parser.add_argument("--polarity", default="keep", choices=["keep", "bright-objects"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 training, 12 test images, 0.25 min each")
    parser.add_argument("--n-train", type=int, help="use only the first N training images")
    parser.add_argument("--n-test", type=int, help="score only the first N test images")
    parser.add_argument("--verbose", action="store_true", help="log the training (loss per epoch, scale factors)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.object_diameter != "auto":
        args.object_diameter = float(args.object_diameter)
    if args.quick:
        args.minutes, args.n_train, args.n_test = 0.25, args.n_train or 40, args.n_test or 12
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = DATA / "dsb2018_nuclei"
    if not root.exists():
        print(f"no data at {root}: skipped")
        return 0
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train, _ = load_split(root, "train", args.n_train)
    test, groups = load_split(root, "test", args.n_test)
    name = "recipe_quick" if args.quick else "recipe"
    previous = RESULTS / f"{name}.json"
    runs: dict[str, Any] = json.loads(previous.read_text()).get("runs", {}) if previous.exists() else {}
    for variant in args.variants:
        print(f"-- {variant}: training {args.minutes:g} min, seed {args.seed}", flush=True)
        runs[f"{variant}/{args.seed}"] = run_variant(variant, args, train, test, groups)
        print_table([runs[f"{variant}/{args.seed}"]])
    print_table(list(runs.values()))
    write_results(name, {"runs": runs, "n_train": len(train), "n_test": len(test), "polarity": args.polarity})
    return 0


if __name__ == "__main__":
    sys.exit(main())
