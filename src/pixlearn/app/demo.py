"""The demo job: synthetic nuclei, train, predict, evaluate, figure."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from pixlearn.app.jobs import train_classical_model

logger = logging.getLogger(__name__)


def run_demo(output: str | os.PathLike[str], *, seed: int = 0) -> str:
    """The demo job: synthetic nuclei -> scribbles -> random forest -> predict -> evaluate -> figure.

    Parameters
    ----------
    output : path-like
        Folder that receives ``data/``, ``model/``, ``predictions/``, ``metrics.json`` and
        ``figure.png``.
    seed : int

    Returns
    -------
    summary : str
        What was done, the test scores and where the results are.
    """
    from pixlearn.app.figures import save_panel
    from pixlearn.data.images import read_canonical, read_image, read_labels
    from pixlearn.data.pairs import load_pairs
    from pixlearn.data.writers import write_image
    from pixlearn.metrics.report import evaluate_folders, write_report
    from pixlearn.models.model_file import load_model, save_model
    from pixlearn.predict import PredictOptions, predict_many
    from pixlearn.synthetic.nuclei import SyntheticConfig, make_dataset
    from pixlearn.synthetic.scribbles import instances_to_semantic, simulate_scribbles

    out = Path(output)
    start = time.perf_counter()
    data = out / "data"
    cfg = SyntheticConfig(shape=(256, 256))
    make_dataset(data, n_train=4, n_test=2, cfg=cfg, seed=seed, overwrite=True)
    split = json.loads((data / "split.json").read_text())
    rng = np.random.default_rng(seed)
    for name in split["train"]:
        labels = read_labels(data / "labels" / f"{name}.tif")
        write_image(data / "scribbles" / f"{name}.tif", simulate_scribbles(labels, rng).astype(np.uint8))
    for name in split["test"]:
        labels = read_labels(data / "labels" / f"{name}.tif")
        write_image(data / "semantic" / f"{name}.tif", instances_to_semantic(labels).astype(np.uint8))

    pairs = load_pairs(data / "images", data / "scribbles", label_kind="scribbles", names=split["train"])
    model = train_classical_model(pairs, label_kind="scribbles")
    save_model(model, out / "model")
    model = load_model(out / "model")

    test_images = [data / "images" / f"{name}.tif" for name in split["test"]]
    predict_many(model, test_images, out / "predictions", PredictOptions(probabilities=True, overwrite=True), model_name=str(out / "model"))
    result = evaluate_folders(out / "predictions", data / "semantic", kind="semantic", n_classes=2)
    write_report(result, out)

    first = split["test"][0]
    raw, _ = read_image(test_images[0])
    probability = read_canonical(out / "predictions" / "probabilities" / f"{first}.tif")
    save_panel(
        out / "figure.png", raw, read_labels(data / "labels" / f"{first}.tif"),
        read_labels(out / "predictions" / f"{first}.tif"), probability[..., 1],
    )
    summary = result["aggregate"]
    iou = ", ".join(f"{v:.3f}" for v in summary["iou"])
    lines = [
        f"demo finished in {time.perf_counter() - start:.1f} s",
        f"  trained a random forest on scribbles of {len(pairs)} synthetic images "
        f"({int(sum((p.labels > 0).sum() for p in pairs))} labelled pixels)",
        f"  test pixel accuracy {summary['pixel_accuracy']:.3f}, IoU background/nuclei {iou}",
        f"  results in {out}/: model/, predictions/, metrics.json, metrics.csv, figure.png",
    ]
    return "\n".join(lines)

