"""Benchmark: a U-Net on the real anisotropic ssTEM stack, trained and applied as a user would, beside the forest.

Data: ``shared/data/drosophila_vnc_sstem`` (read there, never copied; CC BY-NC-SA, so no weights
trained here are ever shipped): the train volume ``(15, 1024, 1024)`` with dense labels of 5
classes, the test volume ``(5, 1024, 1024)``; 4.6 nm pixels, 45-50 nm sections.

* **U-Net**: ``pixlearn train --method unet --task semantic --spacing 50,4.6,4.6 --time-limit M``
  on the train volume (every other setting a default: ``auto_config`` chooses the layout, 2D per
  plane or 3D, depth, patch and batch; ``--precision auto``), then ``pixlearn predict`` on the
  test volume, each in its own process; then ``pixlearn predict --tta`` (outputs averaged over
  flips) on the same model.
* **random forest**: ``pixlearn train --method rf --spacing 50,4.6,4.6`` on the same volume (its
  defaults; it takes well under the U-Net's minutes, which are the budget), ``pixlearn predict``.

Both are scored on the test volume, pooled over its voxels: IoU and Dice per class and the
membrane F1 (the Dice of membrane against all other classes). The wall time of every command is
recorded, with the layout, epochs and precision path the U-Net's model file states.

Results: ``benchmarks/results/networks.json`` keys ``vnc3d_*`` (merged; other keys kept);
``--quick`` (about 2 minutes: the first ``256 x 256`` of every section, 1 minute of training)
writes ``networks_quick.json``. Run: ``.venv/bin/python benchmarks/vnc_unet.py [--minutes 15]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, cpu_facts, host_facts, print_table, run_cli, write_results

VNC = DATA / "drosophila_vnc_sstem"
SPACING = "50,4.6,4.6"  # nm: section thickness 45-50, pixels 4.6 (the README of the data)
CLASSES = ("intracellular", "membrane", "glia", "mitochondria", "synapse")
QUICK_CROP = 256


def _inputs(tmp: Path, crop: int | None) -> tuple[Path, Path, Path]:
    """Train image/label folders and the test image: links to the shared data, or (`crop`) the
    first ``crop x crop`` pixels of every section written to `tmp` (removed afterwards)."""
    import tifffile

    images, labels = tmp / "train" / "images", tmp / "train" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    sources = {images / "stack1.tif": VNC / "images" / "stack1_train.tif",
               labels / "stack1.tif": VNC / "labels" / "stack1_train.tif",
               tmp / "test.tif": VNC / "images" / "stack1_test.tif"}
    for path, source in sources.items():
        if crop is None:
            path.symlink_to(source)
        else:
            tifffile.imwrite(path, tifffile.imread(source)[:, :crop, :crop])
    return images, labels, tmp / "test.tif"


def _truth(crop: int | None) -> np.ndarray:
    import tifffile

    truth = tifffile.imread(VNC / "labels" / "stack1_test.tif")
    return truth if crop is None else truth[:, :crop, :crop]


def score(truth: np.ndarray, prediction: np.ndarray) -> dict[str, Any]:
    """Per-class IoU and Dice, mean IoU and membrane F1, pooled over the test volume's voxels."""
    from pixlearn.metrics import confusion_matrix, scores_from_confusion

    scores = scores_from_confusion(confusion_matrix(truth, prediction, len(CLASSES)))
    named = scores.by_class(CLASSES)
    return {"iou": {c: s["iou"] for c, s in named.items()}, "dice": {c: s["dice"] for c, s in named.items()},
            "mean_iou": scores.mean_iou, "membrane_f1": named["membrane"]["dice"],
            "pixel_accuracy": scores.pixel_accuracy}


def train_and_predict(tmp: Path, name: str, crop: int | None, train_args: list[str], tta: bool = False) -> dict[str, Any]:
    """``pixlearn train ... `train_args``` then ``pixlearn predict`` (and with `tta` ``pixlearn predict
    --tta`` too: wall time and scores under ``"tta"``): wall times, scores, the model file's facts."""
    import tifffile

    from pixlearn.models.model_file import load_model

    images, labels, test = _inputs(tmp / name, crop)
    model, out = tmp / name / "model", tmp / name / "pred"
    train_s, train_peak, train_log, train_cpu = run_cli("train", "--images", images, "--labels", labels,
                                                        "-o", model, "--spacing", SPACING, *train_args)
    predict_s, predict_peak, predict_log, _ = run_cli("predict", model, test, "-o", out)
    prediction = tifffile.imread(out / "test.tif")
    result = {"train_s": train_s, "train_cpu_s": train_cpu, "predict_s": predict_s,
              "peak_rss_mib": max(train_peak, predict_peak), **score(_truth(crop), prediction),
              "model": model_facts(load_model(model)), "log": (train_log + predict_log)[-3000:]}
    if tta:
        tta_s, tta_peak, _, _ = run_cli("predict", model, test, "-o", tmp / name / "pred_tta", "--tta")
        augmented = tifffile.imread(tmp / name / "pred_tta" / "test.tif")
        result["tta"] = {"predict_s": tta_s, "peak_rss_mib": tta_peak, **score(_truth(crop), augmented)}
    return result


def model_facts(model: Any) -> dict[str, Any]:
    """What a trained model states about its set-up: the U-Net's layout, patch, batch, epochs and
    precision path (a forest: its feature spacing)."""
    unet = getattr(model, "unet", None)
    if unet is None:
        return {"kind": "classical", "spacing": list(model.feature_cfg.spacing or ()), "halo": list(model.halo)}
    from pixlearn.nets.unet import receptive_field_halo

    cfg, history = model.train_config, model.history
    return {
        "kind": "network", "layout": "2D per plane" if unet.ndim == 2 else "3D", "ndim": unet.ndim,
        "depth": unet.depth, "stem_factor": unet.stem_factor, "base_channels": unet.base_channels,
        "convs_per_block": unet.convs_per_block, "pool_kernels": [list(k) for k in unet.level_pool_kernels],
        "receptive_field_halo": list(receptive_field_halo(unet)), "patch": list(cfg.patch_shape or ()),
        "batch": cfg.batch_size, "loss": cfg.loss, "epochs": history.get("epochs"),
        "best_epoch": history.get("best_epoch"), "best_val_loss": history.get("best_val_loss"),
        "stop_reason": history.get("stop_reason"), "train_seconds": history.get("train_seconds"),
        "precision": history.get("precision"), "precision_source": history.get("precision_source"),
    }


def _figures(unet: dict[str, Any], forest: dict[str, Any], minutes: float, crop: int | None) -> dict[str, Any]:
    facts = unet["model"]
    return {
        "vnc3d_membrane_iou": unet["iou"]["membrane"],
        "vnc3d_membrane_iou_rf": forest["iou"]["membrane"],
        "vnc3d_membrane_f1": unet["membrane_f1"],
        "vnc3d_membrane_f1_rf": forest["membrane_f1"],
        "vnc3d_iou": unet["iou"], "vnc3d_dice": unet["dice"],
        "vnc3d_iou_rf": forest["iou"], "vnc3d_dice_rf": forest["dice"],
        "vnc3d_mean_iou": unet["mean_iou"], "vnc3d_mean_iou_rf": forest["mean_iou"],
        "vnc3d_time_limit_minutes": minutes,
        "vnc3d_train_minutes": unet["train_s"] / 60.0,
        "vnc3d_train_minutes_rf": forest["train_s"] / 60.0,
        "vnc3d_predict_seconds": unet["predict_s"], "vnc3d_predict_seconds_rf": forest["predict_s"],
        "vnc3d_layout": {key: facts[key] for key in ("layout", "depth", "stem_factor", "patch", "batch",
                                                     "receptive_field_halo", "pool_kernels")},
        "vnc3d_epochs": facts["epochs"],
        **({"vnc3d_membrane_iou_tta": unet["tta"]["iou"]["membrane"], "vnc3d_mean_iou_tta": unet["tta"]["mean_iou"],
            "vnc3d_iou_tta": unet["tta"]["iou"], "vnc3d_membrane_f1_tta": unet["tta"]["membrane_f1"],
            "vnc3d_predict_seconds_tta": unet["tta"]["predict_s"]} if "tta" in unet else {}),
        "vnc3d_precision": facts["precision"],
        "vnc3d_details": {"spacing_nm": SPACING, "crop": crop, "unet": unet, "forest": forest,
                          "cpu": {**host_facts(), **cpu_facts()}},
    }


def _table(unet: dict[str, Any], forest: dict[str, Any]) -> None:
    rows: list[tuple[str, Any, Any]] = [("train minutes", unet["train_s"] / 60, forest["train_s"] / 60),
                                        ("predict s", unet["predict_s"], forest["predict_s"]),
                                        ("mean IoU", unet["mean_iou"], forest["mean_iou"]),
                                        ("membrane F1", unet["membrane_f1"], forest["membrane_f1"])]
    rows += [(f"IoU {c}", unet["iou"][c], forest["iou"][c]) for c in CLASSES]
    rows += [(f"Dice {c}", unet["dice"][c], forest["dice"][c]) for c in CLASSES]
    if "tta" in unet:  # the same U-Net, predictions averaged over flips (pixlearn predict --tta)
        rows += [("--tta: predict s", unet["tta"]["predict_s"], None), ("--tta: mean IoU", unet["tta"]["mean_iou"], None)]
        rows += [(f"--tta: IoU {c}", unet["tta"]["iou"][c], None) for c in CLASSES]
    print_table("VNC ssTEM test volume: U-Net against the random forest", rows, ("metric", "unet", "rf"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="the U-Net's --time-limit")
    parser.add_argument("--quick", action="store_true", help="smoke run: crops of every section, 1 minute of training")
    args = parser.parse_args(argv)
    if not (VNC / "images" / "stack1_train.tif").exists():
        print(f"skipped: {VNC} is not there")
        return 0
    crop, minutes = (QUICK_CROP, 1.0) if args.quick else (None, args.minutes)
    with tempfile.TemporaryDirectory(prefix="vnc_unet_") as tmp:
        forest = train_and_predict(Path(tmp), "rf", crop, ["--method", "rf"])
        unet = train_and_predict(Path(tmp), "unet", crop, ["--method", "unet", "--task", "semantic",
                                                           "--time-limit", f"{minutes * 60:g}s"], tta=True)
    print(unet["log"])
    print(unet["model"])
    _table(unet, forest)
    write_results("networks_quick" if args.quick else "networks", _figures(unet, forest, minutes, crop), merge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
