"""Train a built-in model of pixlearn's zoo and write its model card.

``nuclei``: an instance U-Net for nuclei in fluorescence, brightfield and stained-tissue images,
trained on the DSB2018 train split (CC0, ``../shared/data/dsb2018_nuclei``) and synthetic nuclei
made by :mod:`pixlearn.synthetic`, with the bright-objects polarity rule (brightfield and H&E
inverted per image). Scored on the DSB2018 test split: pooled AP@0.5 per image group and the error
analysis of ``benchmarks/_dsb2018.py`` (printed; its summary in the card).

Run: ``.venv/bin/python scripts/train_builtin.py nuclei --minutes 100 --threads 2`` (CPU or a
CUDA GPU). Writes ``<out>/nuclei.zip`` (an ordinary pixlearn model file) and
``<out>/nuclei.card.json`` (data, licence, command, machine, time and scores).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _dsb2018 import analyse, load_split, report  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei"


def synthetic_pairs(n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`n` synthetic 256x256 fluorescence images of nuclei with their exact labels."""
    from pixlearn.synthetic.nuclei import SyntheticConfig, make_nuclei

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        radius = (3.0, 7.0) if i % 2 else (7.0, 14.0)
        image, label = make_nuclei(SyntheticConfig(shape=(256, 256), radius_px=radius), rng)
        images.append(np.asarray(image, np.float32)[..., None])
        labels.append(np.asarray(label))
    return images, labels


def train_nuclei(minutes: float, seed: int, n_synthetic: int, checkpoint_dir: Path | None) -> Any:
    from pixlearn.data.normalize import NormalizeConfig
    from pixlearn.nets.config import TrainConfig
    from pixlearn.nets.fit import FitOptions, fit_network

    train, _ = load_split(DATA, "train")
    images = [np.asarray(p.image, np.float32) for p in train]
    labels = [np.asarray(p.labels) for p in train]
    more_images, more_labels = synthetic_pairs(n_synthetic, seed)
    config = TrainConfig(epochs=1_000_000, steps_per_epoch=50, batch_size=8, patch_shape=(128, 128), lr=2e-3,
                         time_limit_s=minutes * 60.0, patience=0, seed=seed, val_patches=48)
    options = FitOptions(checkpoint_dir=checkpoint_dir, progress=False)
    return fit_network(images + more_images, labels + more_labels, "instances", train_config=config,
                       normalization=NormalizeConfig(polarity="bright-objects"), options=options)


def score(model: Any, diameter: float | str | None = None) -> dict[str, Any]:
    """Pooled AP@0.5 (StarDist's convention), averaged per image (DSB2018's), per group, and the errors.

    Prints the error analysis of ``benchmarks/_dsb2018.py`` (the same as ``benchmarks/networks.py``).
    With `diameter` (``"auto"``: estimated per image) each image is rescaled to the model's
    training diameter (:func:`pixlearn.predict.rescale.scale_for`).
    """
    from pixlearn.predict import apply_model
    from pixlearn.predict.rescale import scale_for

    test, groups = load_split(DATA, "test")
    predictions = [np.asarray(apply_model(scale_for(model, p.image, diameter), p.image)) for p in test]
    figures, analysis = analyse(test, groups, predictions)
    print(report(analysis), flush=True)
    by_group = {group: {"images": s.images, "ap50": round(s.ap50, 4), "error_share": round(s.error_share, 4),
                        "errors": s.errors.by_category()} for group, s in analysis.by_group.items()}
    fluo = figures["dsb2018_ap50_fluo"]
    return {
        "dsb2018_test_images": len(test),
        "ap50": round(figures["dsb2018_ap50"], 4),
        "ap75": round(figures["dsb2018_ap75"], 4),
        "ap50_per_image": round(figures["dsb2018_ap50_avg"], 4),
        "ap50_fluorescence": None if fluo is None else round(fluo, 4),
        "ap50_by_group": by_group,
        "errors": analysis.overall.errors.by_category(),
    }


def card(model: Any, minutes: float, args: argparse.Namespace, scores: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        "name": "nuclei",
        "task": "instances",
        "summary": "Nuclei in 2D fluorescence, brightfield and stained-tissue (H&E) images: one label per nucleus.",
        "trained_on": f"DSB2018 stage 1 train split (564 images, BBBC038v1 with community fixes) and "
                      f"{args.synthetic} synthetic images of pixlearn.synthetic",
        "licence": "weights: CC0 1.0, as the DSB2018 data (BBBC038v1, Caicedo et al. 2019)",
        "input": "2D, grey or colour (colour is read as the mean of its colours); any size; polarity "
                 "normalised per image (bright background inverted)",
        "command": f"python scripts/train_builtin.py nuclei --minutes {args.minutes:g} --threads {args.threads} "
                   f"--seed {args.seed} --synthetic {args.synthetic}",
        "train_minutes": round(minutes, 1),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "device": "cuda" if torch.cuda.is_available() else "cpu", "torch": torch.__version__},
        "date": datetime.date.today().isoformat(),
        "scores": scores,
        "epochs": model.history.get("epochs"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["nuclei"])
    parser.add_argument("--minutes", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", type=int, default=48, help="synthetic images added to the data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "pixlearn" / "zoo" / "weights")
    parser.add_argument("--checkpoints", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from pixlearn.models.model_file import save_model

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = train_nuclei(args.minutes, args.seed, args.synthetic, args.checkpoints)
    minutes = (time.perf_counter() - start) / 60.0
    scores = score(model)
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(model, args.out / f"{args.name}.zip")
    (args.out / f"{args.name}.card.json").write_text(json.dumps(card(model, minutes, args, scores), indent=1) + "\n")
    print(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
