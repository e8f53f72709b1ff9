"""The CNN parts of ``benchmarks/classify.py``: pixlearn's image classifier, the plain small-CNN peer,
and the background-only control (the CNN on crops whose centre cell is masked out).

Each trains for a wall-clock budget in minutes on the CPU and is scored on the whole test split with
:func:`pixlearn.metrics.classification_scores`; each returns a JSON-safe dict with the scores, the
minutes and CPU seconds spent, and what was trained.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
from scipy import ndimage as ndi


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


def cnn_recipe(minutes: float, seed: int = 0) -> Any:
    """pixlearn's recipe for 64x64 RGB crops with a budget of `minutes` of wall time.

    A residual CNN of 4 stages (stride-2 stem: stages at 32, 16, 8 and 4 px), width 32, or 16 when
    the budget is under 15 minutes (a quarter of the compute per image, so a short run still sees
    several epochs); batch 64, AdamW lr 2e-3 with a 3 % warm-up and a cosine decay to the time
    limit, weight decay 0.01, label smoothing 0.1, class-balanced sampling, flips, 90-degree and
    +-15-degree rotations, zoom 0.9-1.1, brightness/contrast/colour jitter, blur, noise; the best of
    the epochs by validation macro F1 (a stratified 15 % of the training crops), early stopping
    after 15 epochs without a better one.
    """
    from pixlearn.nets import ClassifierNetConfig, ClassifyConfig, ClassifyTrainConfig

    width = 32 if minutes >= 15 else 16
    net = ClassifierNetConfig(width=width, depth=4, stem_stride=2, dropout=0.1)
    train = ClassifyTrainConfig(epochs=1000, batch_size=64, lr=2e-3, warmup_fraction=0.03, weight_decay=0.01,
                                label_smoothing=0.1, balance="sampler", select="macro_f1", patience=15,
                                time_limit_s=minutes * 60.0, seed=seed)
    return ClassifyConfig(net=net, train=train)


def run_cnn(train: tuple[list[np.ndarray], np.ndarray], test: tuple[list[np.ndarray], np.ndarray],
            names: list[str], minutes: float, seed: int = 0) -> dict[str, Any]:
    """Train pixlearn's image classifier for `minutes` and score it on the test crops."""
    from pixlearn.metrics import classification_scores
    from pixlearn.nets import FitOptions, fit_image_classifier

    config = cnn_recipe(minutes, seed)
    start, cpu = time.perf_counter(), _cpu_seconds()
    model = fit_image_classifier(train[0], train[1], names, config=config, options=FitOptions(device="cpu"))
    fit_seconds, fit_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    start = time.perf_counter()
    probabilities = model.predict_proba(test[0], batch_size=256)
    scores = classification_scores(test[1], probabilities=probabilities, class_names=names)
    history = model.history
    return {**scores.to_dict(), "train_minutes": history["train_seconds"] / 60.0, "fit_seconds": fit_seconds,
            "fit_cpu_seconds": fit_cpu, "predict_seconds": time.perf_counter() - start,
            "epochs": history["epochs"], "best_epoch": history["best_epoch"], "stop_reason": history["stop_reason"],
            "val_macro_f1": history.get("val_macro_f1"), "n_parameters": history["n_parameters"],
            "n_train": history["n_train"], "n_val": history["n_val"], "recipe": config.to_dict()}


def _small_cnn(in_channels: int, n_classes: int, width: int = 32) -> Any:
    """Three conv(3x3)-ReLU-maxpool blocks (width, 2 width, 4 width), global average pooling, linear."""
    from torch import nn

    layers: list[nn.Module] = []
    previous = in_channels
    for level in range(3):
        layers += [nn.Conv2d(previous, width * 2**level, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        previous = width * 2**level
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, n_classes))


def run_small_cnn(train: tuple[list[np.ndarray], np.ndarray], test: tuple[list[np.ndarray], np.ndarray],
                  names: list[str], minutes: float, seed: int = 0) -> dict[str, Any]:
    """The peer: what a PyTorch user writes first. A plain small CNN, Adam at a constant 1e-3,
    cross-entropy, shuffled batches of 64, intensities / 255, no augmentation, no class balance, no
    validation (the last weights), for the same `minutes`."""
    import torch
    import torch.nn.functional as F

    from pixlearn.metrics import classification_scores

    torch.manual_seed(seed)
    x = torch.from_numpy(np.stack(train[0]).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.asarray(train[1], np.int64))
    net = _small_cnn(x.shape[1], len(names))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    start, cpu, steps, epochs = time.perf_counter(), _cpu_seconds(), 0, 0
    net.train()
    while time.perf_counter() - start < minutes * 60.0:
        order = torch.from_numpy(rng.permutation(len(y)))
        for first in range(0, len(order), 64):
            batch = order[first:first + 64]
            loss = F.cross_entropy(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if time.perf_counter() - start >= minutes * 60.0:
                break
        epochs += 1
    train_seconds, train_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    net.eval()
    with torch.no_grad():
        x_test = torch.from_numpy(np.stack(test[0]).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        probabilities = torch.cat([torch.softmax(net(x_test[i:i + 256]), dim=1)
                                   for i in range(0, len(x_test), 256)]).numpy()
    scores = classification_scores(test[1], probabilities=probabilities, class_names=names)
    return {**scores.to_dict(), "train_minutes": train_seconds / 60.0, "train_cpu_seconds": train_cpu,
            "steps": steps, "epochs_started": epochs,
            "n_parameters": int(sum(p.numel() for p in net.parameters()))}


def mask_centre(crop: np.ndarray, centre: np.ndarray, cells: np.ndarray, *, radius_px: float = 26.0,
                margin_px: int = 3) -> np.ndarray:
    """`crop` with its middle hidden: a centred disc of `radius_px` and the centre cell grown by
    `margin_px`, painted in the median colour of the background left visible.

    The disc makes the hidden region the same for most cells (median centre-cell radius: 19 px),
    so that its outline does not tell the cell's size or shape; only cells reaching past the disc
    (macrocytes, elongated cells) enlarge it.

    Parameters
    ----------
    crop : ndarray of shape (M, N, 3), uint8
    centre : ndarray of shape (M, N)
        Non-zero on the centre cell (``segment_centre``'s first result).
    cells : ndarray of shape (M, N), bool
        Every cell found (its second result): the background is the rest.
    radius_px : float
    margin_px : int
    """
    rows, cols = np.indices(crop.shape[:2])
    disc = (rows - (crop.shape[0] - 1) / 2) ** 2 + (cols - (crop.shape[1] - 1) / 2) ** 2 <= radius_px**2
    hidden = disc | ndi.binary_dilation(centre > 0, iterations=margin_px)
    background = ~cells & ~hidden
    source = crop[background] if background.any() else crop[~hidden] if (~hidden).any() else crop.reshape(-1, 3)
    out = crop.copy()
    out[hidden] = np.median(source, axis=0).astype(crop.dtype)
    return out


__all__ = ["cnn_recipe", "mask_centre", "run_cnn", "run_small_cnn"]
