"""U-Net on the real data sets: DSB2018 nuclei (instances), ISBI 2012 membranes (semantic, beside
the random forest) and W2S denoising (restoration), each trained under a wall-clock budget.

Run: ``.venv/bin/python benchmarks/networks.py`` (about 50 minutes on 2 CPU cores; ``--quick`` for a
few-minute smoke run). The same script uses a CUDA GPU when one is present (AMP there).
Figures go to ``benchmarks/results/networks.json``. DSB2018 is scored with an error analysis per
image group (``_dsb2018.py``), printed and kept under ``dsb2018_errors``; ``--model PATH`` skips
all training and only scores that saved instance model on DSB2018 (about a minute on CPU; figures
to ``networks_model.json``, never over the benchmark's own). ``--dsb-unet depth=4,convs_per_block=2``
trains that U-Net on DSB2018 instead of auto_config's choice (auto_config's lean CPU layout with
these fields changed; figures to ``networks_dsb_unet.json``, ``--seed N`` its training seed), ``--threads N``
sets torch's threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, print_table, write_results
from _dsb2018 import STARDIST_FLUO_AP50, analyse, load_split, report
from _w2s import ROOT as W2S_ROOT
from _w2s import score_denoiser
from pixlearn.data.folders import read_split
from pixlearn.data.labels import to_class_targets
from pixlearn.data.pairs import load_pairs, to_grey
from pixlearn.metrics import ErrorAnalysis
from pixlearn.predict import apply_model

#: Keys of other benchmarks in networks.json (``vnc_unet.py``), kept by a full run of this one.
KEPT_PREFIXES = ("vnc3d_",)


def _train_cfg(minutes: float, patch: tuple[int, ...], batch: int, seed: int = 0) -> Any:
    from pixlearn.nets.training import TrainConfig

    return TrainConfig(
        epochs=10_000, steps_per_epoch=50, batch_size=batch, patch_shape=patch, lr=2e-3,
        time_limit_s=minutes * 60.0, patience=0, seed=seed, val_patches=48,
    )


def _apply_all(model: Any, images: list[np.ndarray], tta: bool = False) -> list[np.ndarray]:
    return [np.asarray(apply_model(model, image, tta=tta)) for image in images]


def _dsb2018_test(quick: bool) -> tuple[list[Any], list[str]]:
    return load_split(DATA / "dsb2018_nuclei", "test", 20 if quick else None)


def score_dsb2018(model: Any, test: list[Any], groups: list[str]) -> tuple[dict[str, Any], ErrorAnalysis]:
    """AP at IoU 0.5 (= matching accuracy, as DSB2018/StarDist), per group, and the error analysis."""
    from pixlearn.metrics import matching_dataset

    start = time.perf_counter()
    predictions = _apply_all(model, [to_grey(p.image) for p in test])
    predict_s = time.perf_counter() - start
    figures, analysis = analyse(test, groups, predictions)
    scores = matching_dataset([p.labels for p in test], predictions)
    figures.update({
        "dsb2018_f1_50": scores[0].f1,
        "dsb2018_mean_ap": float(np.mean([m.accuracy for m in scores])),
        "dsb2018_predict_seconds": predict_s,
        "dsb2018_n_test": len(test),
    })
    return figures, analysis


def given_unet(fields: str | None) -> Any:
    """The U-Net of ``--dsb-unet``: the lean CPU layout for grey nuclei with `fields` changed, or ``None``."""
    if not fields:
        return None
    from pixlearn.nets.autoconfig import LEAN_CPU
    from pixlearn.nets.config import UNetConfig

    changed = {key: int(value) for key, value in (item.split("=") for item in fields.split(","))}
    return UNetConfig(ndim=2, in_channels=1, out_channels=2, **{**LEAN_CPU, **changed})


def dsb2018(minutes: float, quick: bool, unet: Any = None, seed: int = 0, save: Path | None = None) -> dict[str, Any]:
    """Instance segmentation of nuclei: train, score (with the error analysis, printed) and with TTA."""
    from pixlearn.metrics import matching_dataset
    from pixlearn.nets.fit import fit_network

    root = DATA / "dsb2018_nuclei"
    split = read_split(root)
    train_names = split["train"][:60] if quick else split["train"]
    train = load_pairs(root / "images", root / "labels", label_kind="instances", names=train_names)
    test, groups = _dsb2018_test(quick)
    start = time.perf_counter()
    model = fit_network([p.image for p in train], [p.labels for p in train], "instances", unet=unet,
                        train_config=_train_cfg(minutes, (128, 128), 8, seed))
    train_minutes = (time.perf_counter() - start) / 60.0
    if save is not None:
        from pixlearn.models.model_file import save_model

        save_model(model, save)
    figures, analysis = score_dsb2018(model, test, groups)
    print(report(analysis), flush=True)
    start = time.perf_counter()
    predictions_tta = _apply_all(model, [to_grey(p.image) for p in test], tta=True)
    predict_tta_s = time.perf_counter() - start
    scores_tta = matching_dataset([p.labels for p in test], predictions_tta, (0.5,))
    return {
        **figures,
        "dsb2018_train_minutes": train_minutes,
        "dsb2018_ap50_tta": scores_tta[0].accuracy,
        "dsb2018_predict_seconds_tta": predict_tta_s,
        "dsb2018_n_train": len(train),
        "dsb2018_thresholds": model.to_metadata().get("thresholds"),
        "dsb2018_unet": model.unet.to_dict(),
        "train_precision": model.history.get("precision"),
        "dsb2018_epochs": model.history.get("epochs"),
        "dsb2018_seed": seed,
    }


def dsb2018_saved(path: Path, quick: bool) -> dict[str, Any]:
    """Score a saved instance model on the DSB2018 test split without training (``--model``)."""
    from pixlearn.models.model_file import load_model

    test, groups = _dsb2018_test(quick)
    figures, analysis = score_dsb2018(load_model(path), test, groups)
    print(report(analysis), flush=True)
    return {**figures, "dsb2018_model": str(path)}


def _membrane_scores(truth: list[np.ndarray], predictions: list[np.ndarray]) -> tuple[float, float]:
    from pixlearn.metrics import confusion_matrix, scores_from_confusion

    matrix = sum(confusion_matrix(t, p, 2) for t, p in zip(truth, predictions))
    scores = scores_from_confusion(matrix)
    return float(scores.dice[1]), 1.0 - float(scores.pixel_accuracy)


def isbi2012(minutes: float, quick: bool) -> dict[str, Any]:
    """Membrane segmentation: F1 (= Dice) of the membrane class and pixel error, U-Net vs RF."""
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.nets.fit import fit_network

    root = DATA / "isbi2012_em"
    split = read_split(root)
    train = load_pairs(root / "images", root / "labels", label_kind="dense", names=split["train"])
    test = load_pairs(root / "images", root / "labels", label_kind="dense", names=split["test"])
    targets = [to_class_targets(p.labels, "dense", n_classes=2) for p in train]
    truth = [p.labels for p in test]
    start = time.perf_counter()
    model = fit_network([p.image for p in train], targets, "semantic",
                        train_config=_train_cfg(minutes, (256, 256), 4), class_names=["cell", "membrane"])
    train_minutes = (time.perf_counter() - start) / 60.0
    f1, error = _membrane_scores(truth, _apply_all(model, [p.image for p in test]))
    f1_tta, error_tta = _membrane_scores(truth, _apply_all(model, [p.image for p in test], tta=True))
    start = time.perf_counter()
    forest = fit_pixel_classifier([p.image for p in train], targets, FeatureConfig(),
                                  ClassifierConfig(rf=ForestConfig(n_estimators=100), max_samples_per_class=50_000, seed=0), class_names=["cell", "membrane"])
    rf_fit_s = time.perf_counter() - start
    f1_rf, error_rf = _membrane_scores(truth, _apply_all(forest, [p.image for p in test]))
    return {
        "isbi2012_membrane_f1": f1,
        "isbi2012_pixel_error": error,
        "isbi2012_membrane_f1_tta": f1_tta,
        "isbi2012_pixel_error_tta": error_tta,
        "isbi2012_train_minutes": train_minutes,
        "isbi2012_epochs": model.history.get("epochs"),
        "isbi2012_precision": model.history.get("precision"),
        "isbi2012_membrane_f1_rf": f1_rf,
        "isbi2012_pixel_error_rf": error_rf,
        "isbi2012_rf_fit_seconds": rf_fit_s,
    }


def w2s(minutes: float, quick: bool) -> dict[str, Any]:
    """Denoising: PSNR/SSIM against the 400-frame average, of the network output, the input, the best
    Gaussian filter and non-local means (``_w2s.py``: each affinely fitted to the target first, as
    every 8-bit file was min-max scaled on its own)."""
    from pixlearn.nets.fit import fit_network

    split = read_split(W2S_ROOT)
    train_names = split["train"][:20] if quick else split["train"]
    train = load_pairs(W2S_ROOT / "images", W2S_ROOT / "labels", label_kind="restore", names=train_names)
    start = time.perf_counter()
    model = fit_network([p.image for p in train], [p.labels for p in train], "restore",
                        train_config=_train_cfg(minutes, (128, 128), 8))
    train_minutes = (time.perf_counter() - start) / 60.0
    scores = score_denoiser(model)
    return {
        "w2s_psnr_output": scores["model"]["psnr"],
        "w2s_psnr_input": scores["input"]["psnr"],
        "w2s_ssim_output": scores["model"]["ssim"],
        "w2s_ssim_input": scores["input"]["ssim"],
        "w2s_psnr_gaussian": scores["gaussian"]["psnr"],
        "w2s_gaussian_sigma": scores["gaussian"]["sigma"],
        "w2s_psnr_nl_means": scores["nl_means"]["psnr"],
        "w2s_train_minutes": train_minutes,
    }


def _dsb2018_rows(figures: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [
        ("dsb2018 AP50 pooled", figures.get("dsb2018_ap50"), None),
        ("dsb2018 AP50 per-image mean", figures.get("dsb2018_ap50_avg"), None),
        ("dsb2018 AP50 fluo | StarDist", figures.get("dsb2018_ap50_fluo"), STARDIST_FLUO_AP50),
        ("dsb2018 AP50 colour", figures.get("dsb2018_ap50_colour"), None),
        ("dsb2018 AP75 pooled", figures.get("dsb2018_ap75"), None),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few-minute smoke run on subsets")
    parser.add_argument("--dsb-minutes", type=float, default=30.0)
    parser.add_argument("--isbi-minutes", type=float, default=10.0)
    parser.add_argument("--w2s-minutes", type=float, default=8.0)
    parser.add_argument("--only", choices=["dsb2018", "isbi2012", "w2s"], action="append")
    parser.add_argument("--model", type=Path, help="score this saved instance model on DSB2018 only (no training)")
    parser.add_argument("--dsb-unet", metavar="FIELD=N,...", help="train this U-Net on DSB2018 (only)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed of --dsb-unet (a seed other than 0 writes networks_dsb_unet_seedN.json)")
    parser.add_argument("--save-model", type=Path, metavar="PATH", help="also save the DSB2018 model there (--dsb-unet)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dsb_minutes, args.isbi_minutes, args.w2s_minutes = 1.0, 1.0, 1.0
    if not DATA.exists():
        print(f"no data at {DATA}: skipped")
        return 0
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dsb_unet:
        unet = given_unet(args.dsb_unet)
        print(f"-- dsb2018: training {args.dsb_unet} for {args.dsb_minutes:g} min on {device}", flush=True)
        figures = {**dsb2018(args.dsb_minutes, args.quick, unet, args.seed, args.save_model), "device": device,
                   "torch_threads": torch.get_num_threads()}
        print_table("U-Net on DSB2018", _dsb2018_rows(figures), headers=("metric", "pixlearn", "reference"))
        name = "networks_dsb_unet" + ("_quick" if args.quick else "") + (f"_seed{args.seed}" if args.seed else "")
        write_results(name, figures)
        return 0
    if args.model is not None:
        figures = {**dsb2018_saved(args.model, args.quick), "device": device}
        print_table(f"{args.model.name} on DSB2018", _dsb2018_rows(figures), headers=("metric", "pixlearn", "reference"))
        write_results("networks_model_quick" if args.quick else "networks_model", figures)
        return 0
    runs = {"dsb2018": (dsb2018, args.dsb_minutes), "isbi2012": (isbi2012, args.isbi_minutes),
            "w2s": (w2s, args.w2s_minutes)}
    name = "networks_quick" if args.quick else "networks"
    previous = RESULTS / f"{name}.json"
    kept: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    # a full run replaces this script's figures; those of vnc_unet.py (vnc3d_*) share the file and stay
    figures = {key: value for key, value in kept.items() if args.only or key.startswith(KEPT_PREFIXES)}
    figures.pop("machine", None)
    for key, (fn, minutes) in runs.items():
        if args.only and key not in args.only:
            continue
        print(f"-- {key}: training for {minutes:g} min on {device}", flush=True)
        figures.update(fn(minutes, args.quick))
    throughput = RESULTS / "train_throughput.json"
    if throughput.exists():  # measured by train_throughput.py in the same `make bench`
        measured = json.loads(throughput.read_text())
        # pixlearn on the path `pixlearn train` takes here against MONAI in fp32; both in fp32 beside it
        figures["train_speedup_vs_monai"] = measured.get("train_speedup_vs_monai_auto_median",
                                                         measured.get("train_speedup_vs_monai_auto"))
        figures["train_speedup_vs_monai_fp32"] = measured.get("train_speedup_vs_monai_median",
                                                              measured.get("train_speedup_vs_monai"))
    figures["device"] = device
    figures["torch_threads"] = torch.get_num_threads()
    print_table("U-Net on real data", [
        *_dsb2018_rows(figures),
        ("dsb2018 AP@0.5 with 8x test-time augmentation", figures.get("dsb2018_ap50_tta"), None),
        ("dsb2018 train minutes", figures.get("dsb2018_train_minutes"), None),
        ("isbi2012 membrane F1 (unet | rf)", figures.get("isbi2012_membrane_f1"), figures.get("isbi2012_membrane_f1_rf")),
        ("isbi2012 pixel error (unet | rf)", figures.get("isbi2012_pixel_error"), figures.get("isbi2012_pixel_error_rf")),
        ("isbi2012 pixel error with 8x test-time augmentation", figures.get("isbi2012_pixel_error_tta"), None),
        ("w2s PSNR (output | input)", figures.get("w2s_psnr_output"), figures.get("w2s_psnr_input")),
        ("w2s PSNR (output | best Gaussian)", figures.get("w2s_psnr_output"), figures.get("w2s_psnr_gaussian")),
        ("w2s SSIM (output | input)", figures.get("w2s_ssim_output"), figures.get("w2s_ssim_input")),
    ], headers=("metric", "pixlearn", "reference"))
    write_results(name, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
