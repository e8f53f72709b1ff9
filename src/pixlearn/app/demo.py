"""The demo job: synthetic nuclei, a random forest from scribbles, an instance U-Net, scores, figures."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pixlearn.app.demo_instances import UNET_SECONDS, compare_instances
from pixlearn.app.jobs import train_classical_model

logger = logging.getLogger(__name__)


def run_demo(
    output: str | os.PathLike[str],
    *,
    seed: int = 0,
    unet_seconds: float = UNET_SECONDS,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The demo job: synthetic nuclei -> scribbles -> random forest -> predict -> evaluate -> figure,
    then touching nuclei as instances: the forest's connected components against an instance U-Net.

    Parameters
    ----------
    output : path-like
        Folder that receives ``data/``, ``model/``, ``predictions/``, ``metrics.json`` and
        ``figure.png`` (the random forest), ``rf_instances/``, ``unet_model/``,
        ``unet_predictions/``, ``instance_metrics.json`` and ``instances.png`` (instances).
    seed : int
    unet_seconds : float
        Wall-time budget of the instance U-Net's training (:data:`UNET_SECONDS` by default);
        0 skips the U-Net (the forest's components are still scored as instances).
    progress : callable, optional
        Called with a line as each training starts (the command line prints it).

    Returns
    -------
    summary : str
        What was done, the test scores and where the results are.

    Raises
    ------
    ValueError
        A negative `unet_seconds`.
    """
    if not unet_seconds >= 0:
        raise ValueError(f"unet_seconds must be >= 0 (0 skips the U-Net), got {unet_seconds}")
    say = progress if progress is not None else logger.info
    out = Path(output)
    start = time.perf_counter()
    split = _make_data(out / "data", seed)
    say(f"training a random forest on scribbles of {len(split['train'])} synthetic images ...")
    lines = _random_forest(out, split)
    table, unet_trained = compare_instances(out, split, unet_seconds=unet_seconds, seed=seed, progress=say)
    lines += table
    results = "model/, predictions/, metrics.json, metrics.csv, figure.png, rf_instances/"
    if unet_trained:
        results += ", unet_model/, unet_predictions/"
    lines.append(f"  results in {out}/: {results}, instance_metrics.json, instances.png")
    return "\n".join([f"demo finished in {time.perf_counter() - start:.1f} s", *lines])


def _make_data(data: Path, seed: int) -> dict[str, list[str]]:
    """Synthetic nuclei with exact labels, scribbles on the training images, class masks of the test ones."""
    from pixlearn.data.images import read_labels
    from pixlearn.data.writers import write_image
    from pixlearn.synthetic.nuclei import SyntheticConfig, make_dataset
    from pixlearn.synthetic.scribbles import instances_to_semantic, simulate_scribbles

    make_dataset(data, n_train=4, n_test=2, cfg=SyntheticConfig(shape=(256, 256)), seed=seed, overwrite=True)
    split: dict[str, list[str]] = json.loads((data / "split.json").read_text())
    rng = np.random.default_rng(seed)
    for name in split["train"]:
        labels = read_labels(data / "labels" / f"{name}.tif")
        write_image(data / "scribbles" / f"{name}.tif", simulate_scribbles(labels, rng).astype(np.uint8))
    for name in split["test"]:
        labels = read_labels(data / "labels" / f"{name}.tif")
        write_image(data / "semantic" / f"{name}.tif", instances_to_semantic(labels).astype(np.uint8))
    return split


def _random_forest(out: Path, split: dict[str, list[str]]) -> list[str]:
    """Train, save, reload and apply the random forest; score its pixels; ``figure.png``."""
    from pixlearn.app.figures import save_panel
    from pixlearn.data.images import read_canonical, read_image, read_labels
    from pixlearn.data.pairs import load_pairs
    from pixlearn.metrics.report import evaluate_folders, write_report
    from pixlearn.models.model_file import load_model, save_model
    from pixlearn.predict import PredictOptions, predict_many

    data = out / "data"
    pairs = load_pairs(data / "images", data / "scribbles", label_kind="scribbles", names=split["train"])
    model = train_classical_model(pairs, label_kind="scribbles")
    save_model(model, out / "model")
    model = load_model(out / "model")

    test_images = [data / "images" / f"{name}.tif" for name in split["test"]]
    predict_many(model, test_images, out / "predictions", PredictOptions(probabilities=True, overwrite=True),
                 model_name=str(out / "model"))
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
    return [
        f"  trained a random forest on scribbles of {len(pairs)} synthetic images "
        f"({int(sum((p.labels > 0).sum() for p in pairs))} labelled pixels)",
        f"  test pixel accuracy {summary['pixel_accuracy']:.3f}, IoU background/nuclei {iou}",
    ]
