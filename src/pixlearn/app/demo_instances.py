"""The demo's instance part: the random forest's connected components against an instance U-Net.

The random forest of :func:`pixlearn.app.demo.run_demo` labels pixels (nucleus or background);
turned into objects by connected components, every pair of touching nuclei becomes one object.
An instance U-Net (foreground and boundary distance, seeded watershed) trained for about a minute
on the same synthetic training images separates them. Both are scored on the test images as
instances: pooled AP@0.5 and AP@0.75 (the DSB2018 matching accuracy ``tp/(tp+fp+fn)``), F1 at
IoU 0.5, and the touching pairs of true nuclei that come out separated
(:func:`pixlearn.metrics.touching_separation_dataset`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.nets.config import TrainConfig, UNetConfig

logger = logging.getLogger(__name__)

UNET_SECONDS = 60.0
"""Default training budget of the demo's instance U-Net, seconds of wall time."""
CROP_PX = 96
"""Side of the crop that ``instances.png`` shows, pixels."""
RF_KEY, UNET_KEY, BUILTIN_KEY = "random_forest_components", "unet", "builtin_nuclei"
TITLES = {RF_KEY: "random forest + components", UNET_KEY: "U-Net instances", BUILTIN_KEY: "built-in nuclei"}


def demo_unet_configs(seconds: float, seed: int = 0) -> tuple[UNetConfig, TrainConfig]:
    """The demo's small instance U-Net and its time-limited training set-up.

    A lean CPU network (3 poolings after a space-to-depth stem, 16 base channels, one
    convolution per level) on 96 x 96 patches, 10 batches of 8 per epoch, as many epochs as
    `seconds` allow (the cosine learning rate follows the time budget).

    Parameters
    ----------
    seconds : float
        Wall-time budget of the training, > 0.
    seed : int

    Returns
    -------
    unet : UNetConfig
    train : TrainConfig

    Examples
    --------
    >>> unet, train = demo_unet_configs(60.0)
    >>> unet.out_channels, train.time_limit_s, train.patch_shape
    (2, 60.0, (96, 96))
    """
    unet = UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=3, base_channels=16, stem_factor=2,
                      convs_per_block=1, downsample="conv", upsample="nearest", skip_merge="add")
    train = TrainConfig(epochs=100_000, steps_per_epoch=10, batch_size=8, patch_shape=(96, 96), lr=3e-3,
                        patience=0, val_patches=8, loss="instance", time_limit_s=float(seconds), seed=seed)
    return unet, train


def instance_scores(truth: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> dict[str, Any]:
    """Pooled instance scores of predictions against true instance labels (JSON-safe).

    Parameters
    ----------
    truth, predictions : sequence of ndarray of shape (M, N), integer
        Instance labels, paired by position.

    Returns
    -------
    scores : dict
        ``ap50``, ``ap75`` (matching accuracy at IoU 0.5 and 0.75, counts summed over images),
        ``f1`` (at IoU 0.5), ``n_true``, ``n_pred``, ``touching_pairs`` (in the truth) and
        ``separated_pairs`` (of those, both nuclei matched at IoU 0.5).

    Examples
    --------
    >>> y = np.zeros((4, 8), int); y[:, :4] = 1; y[:, 4:] = 2
    >>> scores = instance_scores([y], [(y > 0).astype(int)])
    >>> scores["n_pred"], scores["touching_pairs"], scores["separated_pairs"]
    (1, 1, 0)
    """
    from pixlearn.metrics import matching_dataset, touching_separation_dataset

    at50, at75 = matching_dataset(truth, predictions, (0.5, 0.75))
    touching = touching_separation_dataset(truth, predictions, 0.5)
    return {"ap50": at50.accuracy, "ap75": at75.accuracy, "f1": at50.f1, "n_true": at50.n_true,
            "n_pred": at50.n_pred, "touching_pairs": touching.n_touching, "separated_pairs": touching.n_separated}


def compare_instances(
    out: Path, split: dict[str, list[str]], *, unet_seconds: float, seed: int, progress: Callable[[str], None]
) -> tuple[list[str], bool]:
    """Score the random forest's components (and an instance U-Net) as instances; write
    ``instance_metrics.json`` and ``instances.png``.

    Parameters
    ----------
    out : Path
        The demo folder, holding ``data/`` and the random forest's ``predictions/``.
    split : dict
        ``train`` and ``test`` image names.
    unet_seconds : float
        Training budget of the U-Net; 0 skips it.
    seed : int
    progress : callable
        Called with a line when the U-Net starts training.

    Returns
    -------
    lines : list of str
        The metric table, for the demo's summary.
    unet_trained : bool
        Whether a U-Net was trained (``unet_model/`` and ``unet_predictions/`` are new).
    """
    from pixlearn.data.images import read_image, read_labels

    data = out / "data"
    truth = [read_labels(data / "labels" / f"{name}.tif") for name in split["test"]]
    methods = {RF_KEY: _forest_components(out, split["test"])}
    notes: list[str] = []
    extra: dict[str, Any] = {}
    if unet_seconds > 0 and importlib.util.find_spec("torch") is None:
        notes.append("  U-Net skipped: PyTorch is not installed (pip install -e '.[nets]')")
    elif unet_seconds > 0:
        progress(f"training an instance U-Net for {unet_seconds:g} s on {len(split['train'])} images ...")
        methods[UNET_KEY], extra = _instance_unet(out, split, unet_seconds, seed)
    if importlib.util.find_spec("torch") is not None:
        methods[BUILTIN_KEY] = _builtin_nuclei(data, split["test"])
    scores = {key: instance_scores(truth, labels) for key, labels in methods.items()}
    if UNET_KEY in scores:
        scores[UNET_KEY].update(extra)
    (out / "instance_metrics.json").write_text(json.dumps(scores, indent=2) + "\n")
    raws = [read_image(data / "images" / f"{name}.tif")[0] for name in split["test"]]
    _save_crop_figure(out / "instances.png", raws, truth, methods)
    return _table(scores, extra) + notes, UNET_KEY in methods


def _forest_components(out: Path, names: Sequence[str]) -> list[np.ndarray]:
    """The random forest's nucleus pixels as objects (connected components), written to ``rf_instances/``."""
    from pixlearn.data.images import read_labels
    from pixlearn.data.writers import write_image
    from pixlearn.postprocess.labels import label_components

    labels = []
    for name in names:
        components = label_components(read_labels(out / "predictions" / f"{name}.tif") > 0)
        write_image(out / "rf_instances" / f"{name}.tif", components)
        labels.append(components)
    return labels


def _instance_unet(out: Path, split: dict[str, list[str]], seconds: float, seed: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Train the instance U-Net, save it to ``unet_model/``, apply it to the test images."""
    from pixlearn.data.images import read_canonical, read_labels
    from pixlearn.models.model_file import load_model, save_model
    from pixlearn.nets.fit import fit_network
    from pixlearn.predict import PredictOptions, predict_many

    data = out / "data"
    images = [read_canonical(data / "images" / f"{name}.tif") for name in split["train"]]
    labels = [read_labels(data / "labels" / f"{name}.tif") for name in split["train"]]
    unet, train = demo_unet_configs(seconds, seed)
    trained = fit_network(images, labels, "instances", unet=unet, train_config=train)
    save_model(trained, out / "unet_model")
    test_images = [data / "images" / f"{name}.tif" for name in split["test"]]
    predict_many(load_model(out / "unet_model"), test_images, out / "unet_predictions", PredictOptions(overwrite=True),
                 model_name=str(out / "unet_model"))
    history = trained.history
    extra = {"train_seconds": float(history.get("train_seconds", 0.0)), "epochs": int(history.get("epochs", 0))}
    return [read_labels(out / "unet_predictions" / f"{name}.tif") for name in split["test"]], extra


def _builtin_nuclei(data: Path, names: Sequence[str]) -> list[np.ndarray]:
    """The built-in ``nuclei`` model (``pixlearn models``) on the test images, with no training."""
    from pixlearn.data.images import read_canonical
    from pixlearn.predict import apply_model
    from pixlearn.zoo import load_model

    model = load_model("nuclei")
    return [np.asarray(apply_model(model, read_canonical(data / "images" / f"{name}.tif"))) for name in names]


def _table(scores: dict[str, dict[str, Any]], extra: dict[str, Any]) -> list[str]:
    """The metric table: one row per method."""
    first = next(iter(scores.values()))
    names = {RF_KEY: "random forest + connected components", BUILTIN_KEY: "built-in nuclei (no training)"}
    if extra:
        epochs = extra["epochs"]
        names[UNET_KEY] = f"U-Net ({extra['train_seconds']:.0f} s, {epochs} epoch{'s' if epochs != 1 else ''})"
    width = max(len(n) for n in names.values())
    lines = [
        f"  instances on the test images ({first['n_true']} nuclei, {first['touching_pairs']} touching pairs):",
        f"    {'method':<{width}}  AP@0.5  AP@0.75  F1@0.5  objects  touching pairs separated",
    ]
    for key, s in scores.items():
        separated = f"{s['separated_pairs']} / {s['touching_pairs']}"
        lines.append(f"    {names[key]:<{width}}  {s['ap50']:6.3f}  {s['ap75']:7.3f}  {s['f1']:6.3f}  "
                     f"{s['n_pred']:7d}  {separated}")
    return lines


def touching_crop(truth: Sequence[np.ndarray], size: int = CROP_PX) -> tuple[int, tuple[slice, slice]]:
    """The image and square window (at most `size` on a side) centred where true objects touch most.

    The pixels at which two different objects meet are smoothed with a Gaussian of a quarter
    of the window's side; the window is centred on the highest value (shifted inside the image
    when it would cross its border), in the image where that value is highest.

    Parameters
    ----------
    truth : sequence of ndarray of shape (M, N), integer
        Instance labels.
    size : int

    Returns
    -------
    index : int
        Which image.
    window : tuple of slice
        Rows and columns of the window.

    Examples
    --------
    >>> y = np.zeros((40, 40), int); y[30:35, 29:33] = 1; y[30:35, 33:37] = 2
    >>> touching_crop([np.zeros((40, 40), int), y], 8)
    (1, (slice(28, 36, None), slice(28, 36, None)))
    """
    best: tuple[float, int, tuple[slice, slice]] = (-1.0, 0, (slice(0, size), slice(0, size)))
    for index, labels in enumerate(truth):
        labels = np.asarray(labels)
        side = min(size, *labels.shape)
        contact = np.zeros(labels.shape, np.float64)
        for axis in (0, 1):
            meet = (np.diff(labels, axis=axis) != 0) & (np.delete(labels, -1, axis) > 0) \
                & (np.delete(labels, 0, axis) > 0)
            contact[tuple(slice(0, -1) if a == axis else slice(None) for a in (0, 1))] += meet
        density = ndimage.gaussian_filter(contact, sigma=side / 4, mode="constant")
        centre = np.unravel_index(int(np.argmax(density)), density.shape)
        if density[centre] > best[0]:
            starts = [int(np.clip(c - side // 2, 0, n - side)) for c, n in zip(centre, labels.shape)]
            best = (float(density[centre]), index, (slice(starts[0], starts[0] + side), slice(starts[1], starts[1] + side)))
    return best[1], best[2]


def _save_crop_figure(path: Path, raws: Sequence[np.ndarray], truth: Sequence[np.ndarray],
                      methods: dict[str, list[np.ndarray]]) -> Path:
    """``instances.png``: image | each method's instances | truth, on the crop where nuclei touch most."""
    from pixlearn.app.figures import save_label_panels

    index, window = touching_crop(truth)
    labels = [methods[key][index][window] for key in methods] + [np.asarray(truth[index])[window]]
    titles = ["image (crop)"] + [TITLES[key] for key in methods] + ["truth"]
    return save_label_panels(path, np.asarray(raws[index])[window], labels, titles=titles)


__all__ = ["CROP_PX", "UNET_SECONDS", "compare_instances", "demo_unet_configs", "instance_scores", "touching_crop"]
