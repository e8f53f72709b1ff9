"""Train a built-in model of pixlearn's zoo and write its model card.

``nuclei``: an instance U-Net for nuclei in fluorescence, brightfield and stained-tissue images,
trained on the DSB2018 train split (CC0, ``../shared/data/dsb2018_nuclei``) and synthetic nuclei
made by :mod:`pixlearn.synthetic`, with the bright-objects polarity rule (brightfield and H&E
inverted per image). Scored on the DSB2018 test split: pooled AP@0.5 per image group and the error
analysis of ``benchmarks/_dsb2018.py`` (printed; its summary in the card).

The network is a U-Net of depth 4 with 16 base channels and two convolutions per block (1.6 M
weights, a 112-pixel receptive-field halo), larger than the lean one ``auto_config`` picks for a
CPU budget: the lean net stops gaining after about 30 CPU-minutes (AP@0.5 0.737 at 30 minutes,
0.734 at 110), so a long run buys capacity instead. ``--depth``, ``--base-channels`` and
``--convs-per-block`` change it.

``--exclude-group colour`` (repeatable) leaves the training images of that group out: the variant
that ``benchmarks/builtin.py --base`` fine-tunes on the group it never saw.

Run: ``.venv/bin/python scripts/train_builtin.py nuclei --minutes 100 --threads 2`` (CPU or a
CUDA GPU). Writes ``<out>/<name>.zip`` (an ordinary pixlearn model file) and
``<out>/<name>.card.json`` (data, licence, command, machine, time and scores); ``<name>`` is
``nuclei``, or ``nuclei-without-<groups>`` with ``--exclude-group``.

``denoise``: a restoration U-Net for 2D widefield fluorescence, trained only on generated pairs
(:mod:`pixlearn.synthetic.fluorescence`: mixed scenes of cytoplasm, nuclei, filaments and spots,
Poisson and read noise over two decades of photon counts), so its weights carry no data licence.
Scored on held-out synthetic pairs and on the real W2S test split (evaluation only: W2S's licence
is unstated, nothing trained on it ships) beside the best Gaussian filter and non-local means
(``benchmarks/_w2s.py``). Run: ``.venv/bin/python scripts/train_builtin.py denoise --minutes 30``.
Not shipped yet: 30 minutes on one busy AVX2 core (37 epochs) gave W2S PSNR 22.6 dB (input 19.3)
where the best Gaussian filter gives 31.3, so a user is better served by a Gaussian filter until
a longer run (or a GPU) beats it.
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
from _common import cpu_flags, host_facts  # noqa: E402
from _dsb2018 import GROUPS, analyse, load_split, report  # noqa: E402
from _w2s import restoration_scores, score_denoiser  # noqa: E402

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


def network(args: argparse.Namespace, out_channels: int = 2) -> Any:
    """The built-in's U-Net: auto_config's lean CPU layout, deeper and with two convolutions per block."""
    from pixlearn.nets.autoconfig import LEAN_CPU
    from pixlearn.nets.config import UNetConfig

    return UNetConfig(ndim=2, in_channels=1, out_channels=out_channels, depth=args.depth, base_channels=args.base_channels,
                      **{**LEAN_CPU, "convs_per_block": args.convs_per_block})


def train_nuclei(args: argparse.Namespace) -> Any:
    """Train on the DSB2018 train split (less any excluded groups) and the synthetic images."""
    from pixlearn.data.normalize import NormalizeConfig
    from pixlearn.nets.config import TrainConfig
    from pixlearn.nets.fit import FitOptions, fit_network

    train, groups = load_split(DATA, "train")
    kept = [p for p, g in zip(train, groups) if g not in args.exclude_group]
    print(f"training on {len(kept)} of {len(train)} DSB2018 images and {args.synthetic} synthetic", flush=True)
    images = [np.asarray(p.image, np.float32) for p in kept]
    labels = [np.asarray(p.labels) for p in kept]
    more_images, more_labels = synthetic_pairs(args.synthetic, args.seed)
    config = TrainConfig(epochs=1_000_000, steps_per_epoch=50, batch_size=8, patch_shape=(128, 128), lr=2e-3,
                         time_limit_s=args.minutes * 60.0, patience=0, seed=args.seed, val_patches=48)
    options = FitOptions(checkpoint_dir=args.checkpoints, progress=False)
    return fit_network(images + more_images, labels + more_labels, "instances", unet=network(args),
                       train_config=config, normalization=NormalizeConfig(polarity="bright-objects"),
                       options=options)


def train_denoise(args: argparse.Namespace) -> Any:
    """Train the restoration U-Net on `args.pairs` generated pairs of 256x256 (L1 loss)."""
    from pixlearn.nets.config import TrainConfig
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.synthetic.fluorescence import FluorescenceConfig, make_denoising_pairs

    noisy, clean = make_denoising_pairs(args.pairs, FluorescenceConfig(), np.random.default_rng(args.seed))
    print(f"training on {len(noisy)} synthetic pairs", flush=True)
    config = TrainConfig(epochs=1_000_000, steps_per_epoch=50, batch_size=8, patch_shape=(128, 128), lr=2e-3,
                         time_limit_s=args.minutes * 60.0, patience=0, seed=args.seed, val_patches=48, loss="l1")
    options = FitOptions(checkpoint_dir=args.checkpoints, progress=False)
    return fit_network(noisy, clean, "restore", unet=network(args, out_channels=1), train_config=config,
                       options=options)


def score_denoise(model: Any, seed: int) -> dict[str, Any]:
    """PSNR/SSIM on the W2S test split (the headline, beside the input, the best Gaussian filter and
    NL-means) and PSNR on 20 held-out synthetic pairs (another seed)."""
    from pixlearn.predict import apply_model
    from pixlearn.synthetic.fluorescence import FluorescenceConfig, make_denoising_pairs

    noisy, clean = make_denoising_pairs(20, FluorescenceConfig(), np.random.default_rng(10_000 + seed))
    synthetic = restoration_scores(clean, [np.asarray(apply_model(model, image)) for image in noisy])
    synthetic_input = restoration_scores(clean, noisy)
    w2s = score_denoiser(model)
    return {
        "w2s_test_images": w2s["w2s_test_images"],
        "psnr": w2s["model"]["psnr"], "ssim": w2s["model"]["ssim"],
        "psnr_input": w2s["input"]["psnr"], "psnr_gaussian": w2s["gaussian"]["psnr"],
        "psnr_nl_means": w2s["nl_means"]["psnr"],
        "synthetic_psnr": synthetic["psnr"], "synthetic_psnr_input": synthetic_input["psnr"],
        "synthetic_pairs": len(noisy),
        "w2s": w2s,
    }


def denoise_card(model: Any, minutes: float, args: argparse.Namespace, scores: dict[str, Any]) -> dict[str, Any]:
    """The denoiser's model card: generated data, the project's licence, the command, machine and scores."""
    return {
        "name": "denoise",
        "task": "restore",
        "summary": "Denoising of 2D widefield fluorescence images (one channel; apply per channel).",
        "trained_on": f"{args.pairs} generated pairs of pixlearn.synthetic.fluorescence (no external data)",
        "licence": "weights: the project's licence (trained on generated data only)",
        "input": "2D, one channel, any size; percentile-normalised per image, output in the input's range",
        "command": (f"python scripts/train_builtin.py denoise --minutes {args.minutes:g} --threads {args.threads} "
                    f"--seed {args.seed} --pairs {args.pairs} --depth {args.depth} "
                    f"--base-channels {args.base_channels} --convs-per-block {args.convs_per_block}"),
        "train_minutes": round(minutes, 1),
        "machine": machine(model),
        "date": datetime.date.today().isoformat(),
        "scores": scores,
        "epochs": model.history.get("epochs"),
    }


def machine(model: Any) -> dict[str, Any]:
    """Where the model was trained: CPU and flags, threads, device, torch and the precision path."""
    import torch

    return {"cpu": host_facts().get("model") or platform.machine(), "cpu_flags": cpu_flags(),
            "threads": torch.get_num_threads(), "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch": torch.__version__, "precision": model.history.get("precision"),
            "load_average_at_end": host_facts().get("load_average")}


def model_name(args: argparse.Namespace) -> str:
    """``nuclei``, or ``nuclei-without-<groups>`` for a variant trained without some groups."""
    return "-".join([args.name, *(["without", *sorted(args.exclude_group)] if args.exclude_group else [])])


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
    """The nuclei model's card: data and licence, the command, machine, time and scores."""
    left_out = f" less its {', '.join(sorted(args.exclude_group))} images" if args.exclude_group else ""
    command = (f"python scripts/train_builtin.py nuclei --minutes {args.minutes:g} --threads {args.threads} "
               f"--seed {args.seed} --synthetic {args.synthetic} --depth {args.depth} "
               f"--base-channels {args.base_channels} --convs-per-block {args.convs_per_block}"
               + "".join(f" --exclude-group {g}" for g in sorted(args.exclude_group)))
    return {
        "name": model_name(args),
        "task": "instances",
        "summary": "Nuclei in 2D fluorescence, brightfield and stained-tissue (H&E) images: one label per nucleus.",
        "trained_on": f"DSB2018 stage 1 train split (564 images, BBBC038v1 with community fixes){left_out}, "
                      f"and {args.synthetic} synthetic images of pixlearn.synthetic",
        "licence": "weights: CC0 1.0, as the DSB2018 data (BBBC038v1, Caicedo et al. 2019)",
        "input": "2D, grey or colour (colour is read as the mean of its colours); any size; polarity "
                 "normalised per image (bright background inverted)",
        "command": command,
        "train_minutes": round(minutes, 1),
        "machine": machine(model),
        "date": datetime.date.today().isoformat(),
        "scores": scores,
        "epochs": model.history.get("epochs"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["nuclei", "denoise"])
    parser.add_argument("--minutes", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", type=int, default=48, help="synthetic images added to the data (nuclei)")
    parser.add_argument("--pairs", type=int, default=400, help="generated training pairs (denoise)")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "pixlearn" / "zoo" / "weights")
    parser.add_argument("--checkpoints", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--convs-per-block", type=int, default=2)
    parser.add_argument("--exclude-group", action="append", default=[], choices=GROUPS,
                        help="leave this group's training images out (repeatable)")
    args = parser.parse_args(argv)
    import torch

    from pixlearn.models.model_file import save_model

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = train_nuclei(args) if args.name == "nuclei" else train_denoise(args)
    minutes = (time.perf_counter() - start) / 60.0
    if args.name == "nuclei":
        scores = score(model)
        model_card = card(model, minutes, args, scores)
    else:
        scores = score_denoise(model, args.seed)
        model_card = denoise_card(model, minutes, args, scores)
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(model, args.out / f"{model_card['name']}.zip")
    (args.out / f"{model_card['name']}.card.json").write_text(json.dumps(model_card, indent=1) + "\n")
    print(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
