"""W2S denoising test split: a restoration model scored beside classical denoisers, one rule for all.

Each 8-bit W2S file was min-max scaled on its own, so every output (the model's, the input's, a
Gaussian filter's, non-local means') is affinely fitted to the percentile-normalised target
(:func:`pixlearn.metrics.scale_to_target`) before PSNR and SSIM. The Gaussian filter's sigma is the
best of :data:`GAUSSIAN_SIGMAS` on the test images themselves (an oracle: the peer at its best).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import DATA

ROOT = DATA / "w2s_denoising"
GAUSSIAN_SIGMAS: tuple[float, ...] = (0.7, 1.0, 1.5, 2.0, 3.0)


def test_pairs(limit: int | None = None) -> list[Any]:
    """The W2S test split (noisy single frame, 400-frame average)."""
    from pixlearn.data.folders import read_split
    from pixlearn.data.pairs import load_pairs

    names = read_split(ROOT)["test"][:limit]
    return load_pairs(ROOT / "images", ROOT / "labels", label_kind="restore", names=names)


def restoration_scores(targets: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, float]:
    """Mean PSNR and SSIM of `outputs` (``(M, N, 1)``) against `targets`, each fitted to its target first."""
    from pixlearn.metrics import psnr, scale_to_target, ssim

    rows = []
    for truth, output in zip(targets, outputs):
        target, out = scale_to_target(np.asarray(truth)[..., 0], np.asarray(output, np.float32)[..., 0])
        rows.append((psnr(target, out, 1.0), ssim(target, out, 1.0)))
    mean = np.mean(np.array(rows), axis=0)
    return {"psnr": round(float(mean[0]), 3), "ssim": round(float(mean[1]), 4)}


def noise_sigma(plane: np.ndarray) -> float:
    """The noise's standard deviation from neighbour differences (median absolute deviation)."""
    differences = np.diff(plane, axis=1).ravel()
    return float(np.median(np.abs(differences - np.median(differences))) / (0.6745 * np.sqrt(2.0)))


def score_denoiser(model: Any, limit: int | None = None) -> dict[str, Any]:
    """PSNR/SSIM on the W2S test split: `model`, the noisy input, the best Gaussian filter, NL-means."""
    from scipy import ndimage as ndi
    from skimage.restoration import denoise_nl_means

    from pixlearn.predict import apply_model

    pairs = test_pairs(limit)
    images = [np.asarray(p.image, np.float32) for p in pairs]
    targets = [p.labels for p in pairs]
    gaussian = {s: restoration_scores(targets, [ndi.gaussian_filter(im, (s, s, 0)) for im in images]) for s in GAUSSIAN_SIGMAS}
    best_sigma = max(gaussian, key=lambda s: gaussian[s]["psnr"])
    nl_means = []
    for image in images:
        plane = image[..., 0] / 255.0
        sigma = noise_sigma(plane)
        nl_means.append(denoise_nl_means(plane, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                         fast_mode=True)[..., None])
    return {
        "w2s_test_images": len(pairs),
        "model": restoration_scores(targets, [np.asarray(apply_model(model, im)) for im in images]),
        "input": restoration_scores(targets, images),
        "gaussian": {**gaussian[best_sigma], "sigma": best_sigma},
        "nl_means": restoration_scores(targets, nl_means),
    }
