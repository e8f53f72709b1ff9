"""The built-in ``nuclei`` model on DSB2018: its score per image group, and what fine-tuning buys.

1. The built-in model as shipped (``pixlearn.load_model("nuclei")``), scored on the DSB2018 test
   split: pooled AP@0.5 (StarDist's convention), AP@0.75, AP@0.5 averaged per image (DSB2018's)
   and pooled AP@0.5 per image group (``benchmarks/_dsb2018.py``).
2. The colour group (stained tissue, 13 test images): fine-tune a base model on 10 colour
   training images for N minutes (``fit_network(init=...)``, as ``pixlearn train --init nuclei``:
   the learning rate times ``--init-lr-factor`` (default 1) after a short warm-up, the last epoch's weights kept), train the same architecture from scratch
   on the same images for the same minutes, and compare both with the base model untouched, all
   scored on the colour test images. The fair base is a variant of the generalist that never saw
   the group: ``scripts/train_builtin.py nuclei --exclude-group colour`` trains it (the recipe of
   the built-in, less the colour training images) and ``--base`` names its file; without
   ``--base`` the built-in itself is fine-tuned.

Run::

    .venv/bin/python scripts/train_builtin.py nuclei --minutes 70 --threads 1 --exclude-group colour --out variants
    .venv/bin/python benchmarks/builtin.py --base variants/nuclei-without-colour.zip --minutes 10

(about 25 minutes on 2 CPU cores after the variant's 70; ``--part builtin|finetune`` runs one half
and keeps the other's figures in the file; ``--quick`` for a smoke run under 3 minutes on
subsets). A CUDA GPU is used when present. Figures go to ``benchmarks/results/builtin.json``
(``builtin_quick.json`` with ``--quick``), with the machine and its CPU flags.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, cpu_flags, print_table, write_results
from _dsb2018 import GROUPS, load_split
from pixlearn.data.folders import read_split
from pixlearn.data.pairs import Pair, load_pairs, to_grey

ROOT = DATA / "dsb2018_nuclei"
N_FINETUNE_IMAGES = 10


def score(model: Any, pairs: list[Pair], groups: list[str]) -> dict[str, Any]:
    """Pooled AP@0.5 and AP@0.75, AP@0.5 per image, and pooled AP@0.5 per group (of those present)."""
    from pixlearn.metrics import matching_dataset
    from pixlearn.predict import apply_model

    predictions = [np.asarray(apply_model(model, p.image)) for p in pairs]
    truth = [p.labels for p in pairs]
    pooled = matching_dataset(truth, predictions, (0.5, 0.75))
    by_group = {}
    for group in GROUPS:
        picked = [i for i, g in enumerate(groups) if g == group]
        if picked:
            match = matching_dataset([truth[i] for i in picked], [predictions[i] for i in picked], (0.5,))[0]
            by_group[group] = {"images": len(picked), "ap50": round(match.accuracy, 4)}
    return {
        "images": len(pairs),
        "ap50": round(pooled[0].accuracy, 4),
        "ap75": round(pooled[1].accuracy, 4),
        "ap50_per_image": round(matching_dataset(truth, predictions, (0.5,), by_image=True)[0].accuracy, 4),
        "ap50_by_group": by_group,
    }


def colour_names(side: str) -> list[str]:
    """The colour (RGB) images of one side of the split, in split order."""
    with open(ROOT / "metadata.csv") as fh:
        colour = {row["name"] for row in csv.DictReader(fh) if int(row["channels"]) == 3}
    return [name for name in read_split(ROOT)[side] if name in colour]


def finetune_pairs(n: int, seed: int) -> list[Pair]:
    """`n` colour training images (a seeded choice), read as colour."""
    names = colour_names("train")
    chosen = sorted(np.random.default_rng(seed).choice(len(names), size=min(n, len(names)), replace=False))
    return load_pairs(ROOT / "images", ROOT / "labels", label_kind="instances", names=[names[i] for i in chosen])


def colour_test_pairs(limit: int | None) -> list[Pair]:
    """The colour test images, made grey as the built-in model reads them."""
    names = colour_names("test")[:limit]
    pairs = load_pairs(ROOT / "images", ROOT / "labels", label_kind="instances", names=names)
    return [dataclasses.replace(p, image=to_grey(p.image)) for p in pairs]


def _train_config(minutes: float, seed: int, init_lr_factor: float = 1.0) -> Any:
    from pixlearn.nets.training import TrainConfig

    # the recipe of scripts/train_builtin.py; fine-tuning runs at lr * init_lr_factor
    return TrainConfig(epochs=1_000_000, steps_per_epoch=50, batch_size=8, patch_shape=(128, 128), lr=2e-3,
                       time_limit_s=minutes * 60.0, patience=0, seed=seed, val_patches=48,
                       init_lr_factor=init_lr_factor)


def finetune_experiment(base: Any, minutes: float, n_images: int, test_limit: int | None,
                        seed: int, init_lr_factor: float = 1.0) -> dict[str, Any]:
    """Fine-tuning `base` vs from scratch vs `base` untouched, on the colour group."""
    from pixlearn.nets.fit import fit_network

    train = finetune_pairs(n_images, seed)
    test = colour_test_pairs(test_limit)
    groups = ["colour"] * len(test)
    images, labels = [p.image for p in train], [p.labels for p in train]
    start = time.perf_counter()
    tuned = fit_network(images, labels, "instances", train_config=_train_config(minutes, seed, init_lr_factor), init=base)
    tuned_minutes = (time.perf_counter() - start) / 60.0
    start = time.perf_counter()
    scratch = fit_network([to_grey(im) for im in images], labels, "instances", unet=base.unet,
                          normalization=base.normalization, train_config=_train_config(minutes, seed))
    scratch_minutes = (time.perf_counter() - start) / 60.0
    scores = {name: score(model, test, groups) for name, model in
              (("finetune", tuned), ("scratch", scratch), ("no_finetune", base))}
    return {
        "finetune_ap50": scores["finetune"]["ap50"],
        "finetune_ap50_scratch": scores["scratch"]["ap50"],
        "finetune_ap50_no_finetune": scores["no_finetune"]["ap50"],
        "finetune_scores": scores,
        "finetune_minutes": minutes,
        "finetune_wall_minutes": {"finetune": round(tuned_minutes, 2), "scratch": round(scratch_minutes, 2)},
        "finetune_epochs": {"finetune": tuned.history.get("epochs"), "scratch": scratch.history.get("epochs")},
        "finetune_best_epoch": {"finetune": tuned.history.get("best_epoch"),
                                "scratch": scratch.history.get("best_epoch")},
        "finetune_kept_epoch": {"finetune": tuned.history.get("kept_epoch"),
                                "scratch": scratch.history.get("kept_epoch")},
        "finetune_lr": {"finetune": tuned.train_config.lr, "scratch": scratch.train_config.lr},
        "finetune_train_images": [p.name for p in train],
        "finetune_test_images": len(test),
    }


def builtin_figures(builtin: Any, test_limit: int | None) -> dict[str, Any]:
    """The built-in model's scores on the DSB2018 test split, and its card's command and date."""
    import pixlearn

    test, groups = load_split(ROOT, "test", limit=test_limit)
    print(f"-- built-in nuclei on {len(test)} DSB2018 test images", flush=True)
    scores = score(builtin, test, groups)
    return {
        "builtin_nuclei_dsb2018_ap50": scores["ap50"],
        "builtin_nuclei_dsb2018_ap75": scores["ap75"],
        "builtin_nuclei_dsb2018_ap50_per_image": scores["ap50_per_image"],
        "builtin_nuclei_dsb2018_ap50_by_group": scores["ap50_by_group"],
        "builtin_nuclei_dsb2018_test_images": scores["images"],
        "builtin_nuclei_card": {k: pixlearn.describe("nuclei")["model_card"].get(k) for k in ("command", "date")},
    }


def summary_rows(figures: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The printed table: the built-in's scores and the fine-tuning comparison, of what ran."""
    rows: list[tuple[str, Any, Any]] = []
    if "builtin_nuclei_dsb2018_ap50" in figures:
        rows.append(("dsb2018 test AP@0.5", figures["builtin_nuclei_dsb2018_ap50"], None))
        rows += [(f"  {g} ({s['images']}) AP@0.5", s["ap50"], None)
                 for g, s in figures["builtin_nuclei_dsb2018_ap50_by_group"].items()]
    if "finetune_ap50" in figures:
        rows.append(("colour: fine-tuned | scratch", figures["finetune_ap50"], figures["finetune_ap50_scratch"]))
        rows.append(("colour: fine-tuned | untouched base", figures["finetune_ap50"],
                     figures["finetune_ap50_no_finetune"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run under 3 minutes on subsets")
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes of each fine-tuning run")
    parser.add_argument("--base", default="nuclei", help="the model fine-tuned: a built-in name or a model file")
    parser.add_argument("--part", choices=("all", "builtin", "finetune"), default="all")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-lr-factor", type=float, default=1.0, help="fine-tuning's share of the learning rate")
    args = parser.parse_args(argv)
    if not ROOT.exists():
        print(f"no data at {ROOT}: skipped")
        return 0
    import torch

    import pixlearn

    if args.threads:
        torch.set_num_threads(args.threads)
    minutes, test_limit, n_images = (0.2, 16, 4) if args.quick else (args.minutes, None, N_FINETUNE_IMAGES)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    figures: dict[str, Any] = {"device": device, "torch_threads": torch.get_num_threads(), "cpu_flags": cpu_flags(),
                               "quick": args.quick}
    if args.part in ("all", "builtin"):
        figures.update(builtin_figures(pixlearn.load_model("nuclei", device=device), test_limit))
    if args.part in ("all", "finetune"):
        print(f"-- colour group: fine-tune {args.base} on {n_images} images vs scratch, {minutes:g} min each",
              flush=True)
        base = pixlearn.load_model(args.base, device=device)
        figures.update(finetune_experiment(base, minutes, n_images, 4 if args.quick else None, args.seed,
                                           args.init_lr_factor))
        figures["finetune_base"] = Path(args.base).name
        figures["finetune_init_lr_factor"] = args.init_lr_factor
    print_table("built-in nuclei model", summary_rows(figures), headers=("metric", "pixlearn", "reference"))
    # another learning-rate share is an experiment beside the benchmark: its own file
    name = "builtin" if args.init_lr_factor == 1.0 else f"builtin_init_lr_{args.init_lr_factor:g}"
    write_results(f"{name}_quick" if args.quick else name, figures, merge=args.part != "all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
