"""Trained image classifiers: :class:`ImageClassifierModel`, one class per image.

The model holds the architecture (:class:`~pixlearn.nets.classify_config.ClassifierNetConfig`),
the torch module, the class names and the normalisation: either fixed per-channel bounds from the
training set (``dataset_bounds``) or a per-image :class:`~pixlearn.data.normalize.NormalizeConfig`.
Its metadata is JSON and its weights a flat ``dict[str, Tensor]``, which
:mod:`pixlearn.models.model_file` writes as ``model.json`` and ``weights.safetensors`` (kind
``"image-classifier"``). It is not a :class:`~pixlearn.models.protocol.PixelModel`: it gives one
answer per image, not per pixel, and is applied whole, not tile by tile.

Prediction runs an eval-only copy of the network (:func:`pixlearn.nets.inference.inference_copy`);
explanations (:mod:`pixlearn.nets.saliency`) run the module itself, which has the gradients.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pixlearn.data.normalize import NormalizeConfig, apply_normalization, compute_normalization
from pixlearn.nets.classifier import ResidualClassifier
from pixlearn.nets.classify_config import ClassifierNetConfig, ClassifyTrainConfig
from pixlearn.nets.inference import inference_copy
from pixlearn.nets.training import resolve_device

logger = logging.getLogger(__name__)

KIND = "image-classifier"
EXPLAIN_METHODS: tuple[str, ...] = ("gradcam", "occlusion")


class ImageClassifierModel:
    """A trained (or freshly initialised) residual CNN that gives one class per image.

    Parameters
    ----------
    net_config : ClassifierNetConfig
    class_names : sequence of str
        One name per output, ``net_config.n_classes`` of them.
    net : ResidualClassifier, optional
        The module; a new one (random weights) when ``None``.
    normalization : NormalizeConfig, optional
        Per-image normalisation, used when `dataset_bounds` is ``None``; default percentiles.
    dataset_bounds : (sequence of float, sequence of float), optional
        Per-channel ``(low, high)`` mapped to 0..1 for every image (from the training set).
    input_shape : tuple of int, optional
        Spatial shape the network was trained on (prediction takes any size).
    history, train_config, device
        Training summary, :class:`ClassifyTrainConfig`, and where the weights go (default CUDA
        when available, else CPU).
    """

    kind = KIND
    task = "classify"

    def __init__(self, net_config: ClassifierNetConfig, class_names: Sequence[str], net: ResidualClassifier | None = None,
                 *, normalization: NormalizeConfig | None = None,
                 dataset_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
                 input_shape: tuple[int, ...] | None = None, history: dict[str, Any] | None = None,
                 train_config: ClassifyTrainConfig | None = None, device: Any = None) -> None:
        if len(class_names) != net_config.n_classes:
            raise ValueError(f"{len(class_names)} class names for {net_config.n_classes} outputs")
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class names must be distinct, got {list(class_names)}")
        if dataset_bounds is not None and any(len(b) != net_config.in_channels for b in dataset_bounds):
            raise ValueError(f"dataset bounds need {net_config.in_channels} values per channel, got {dataset_bounds}")
        self.net_config = net_config
        self.class_names = tuple(str(c) for c in class_names)
        self.net = ResidualClassifier(net_config) if net is None else net
        self.normalization = NormalizeConfig() if normalization is None else normalization
        self.dataset_bounds = None if dataset_bounds is None else (
            tuple(float(v) for v in dataset_bounds[0]), tuple(float(v) for v in dataset_bounds[1]))
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.history = {} if history is None else dict(history)
        self.train_config = train_config
        self._device = resolve_device(device)
        self.net.to(self._device).eval()
        self._fast: tuple[tuple[Any, ...], torch.nn.Module] | None = None

    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return self.net_config.ndim

    @property
    def n_channels(self) -> int:
        """Input channels."""
        return self.net_config.in_channels

    @property
    def n_outputs(self) -> int:
        """Number of classes."""
        return self.net_config.n_classes

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self._device

    def to(self, device: Any) -> ImageClassifierModel:
        """Move the weights to `device` (``None``: CUDA when available, else CPU); returns self."""
        self._device = resolve_device(device)
        self.net.to(self._device)
        self._fast = None
        return self

    # ---------------------------------------------------------------- prediction
    def normalize(self, image: np.ndarray) -> np.ndarray:
        """A raw canonical image ``(..., C)`` scaled as in training, float32."""
        image = np.asarray(image)
        if image.ndim != self.ndim + 1 or image.shape[-1] != self.n_channels:
            raise ValueError(f"expected a canonical {self.ndim}D image with {self.n_channels} channel(s) "
                             f"({'P, ' if self.ndim == 3 else ''}M, N, {self.n_channels}), got shape {image.shape}")
        if self.dataset_bounds is not None:
            low, high = (np.asarray(b, np.float32) for b in self.dataset_bounds)
        else:
            low, high = compute_normalization(image, self.normalization)
        return apply_normalization(image, low, high)

    def predict_logits_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Logits of a batch of normalised images of one shape.

        Parameters
        ----------
        blocks : ndarray of shape (B, M, N, C) or (B, P, M, N, C), float32

        Returns
        -------
        logits : ndarray of shape (B, K), float32
        """
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != self.ndim + 2 or blocks.shape[-1] != self.n_channels:
            raise ValueError(f"expected blocks of shape (B, {'P, ' if self.ndim == 3 else ''}M, N, {self.n_channels}), "
                             f"got {blocks.shape}")
        order = (0, self.ndim + 1) + tuple(range(1, self.ndim + 1))
        x = torch.from_numpy(np.ascontiguousarray(blocks)).permute(order).to(self._device)
        with torch.inference_mode():
            return np.ascontiguousarray(self._inference_net()(x).float().cpu().numpy())

    def predict_proba(self, images: Sequence[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities of raw canonical images (any sizes; equal shapes are batched).

        Parameters
        ----------
        images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
            Raw intensities, normalised here as in training.
        batch_size : int

        Returns
        -------
        probabilities : ndarray of shape (n_images, K), float32
        """
        normalised = [self.normalize(im) for im in images]
        out = np.zeros((len(normalised), self.n_outputs), np.float32)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(normalised):
            by_shape.setdefault(im.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                logits = self.predict_logits_batch(np.stack([normalised[i] for i in chunk]))
                out[chunk] = _softmax(logits)
        return out

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class index of each raw canonical image, ``(n_images,)`` int64."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)

    def explain(self, image: np.ndarray, method: str = "gradcam", *, target: int | None = None) -> np.ndarray:
        """Saliency map of one raw image for class `target` (default: the predicted one).

        Parameters
        ----------
        image : ndarray of shape (M, N, C) or (P, M, N, C)
        method : {"gradcam", "occlusion"}
            Grad-CAM on the last stage (:func:`pixlearn.nets.saliency.grad_cam`) or the drop in
            the class probability when patches are hidden (:func:`pixlearn.nets.saliency.occlusion`).
        target : int, optional

        Returns
        -------
        saliency : ndarray of shape (M, N) or (P, M, N), float32 in 0..1
        """
        from pixlearn.nets import saliency

        if method not in EXPLAIN_METHODS:
            raise ValueError(f"explanation method {method!r} is not one of {EXPLAIN_METHODS}")
        normalised = self.normalize(image)
        if method == "gradcam":
            return saliency.grad_cam(self.net, normalised, target, device=self._device)
        return saliency.occlusion(lambda batch: _softmax(self.predict_logits_batch(batch)), normalised, target)

    def _inference_net(self) -> torch.nn.Module:
        """The eval-only fast copy of :attr:`net`, rebuilt when the device or any tensor changed."""
        self.net.eval()
        key = (self._device, id(self.net), tuple((t.data_ptr(), 0 if t.is_inference() else t._version)
                                                 for t in (*self.net.parameters(), *self.net.buffers())))
        if self._fast is None or self._fast[0] != key:
            self._fast = (key, inference_copy(self.net, self.ndim))
        return self._fast[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the fast copy; it is rebuilt where it is used."""
        state = self.__dict__.copy()
        state["_fast"] = None
        return state

    # ---------------------------------------------------------------- persistence
    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description: architecture, classes, normalisation, input shape, training."""
        return {
            "task": self.task,
            "net": self.net_config.to_dict(),
            "class_names": list(self.class_names),
            "normalization": self.normalization.to_dict(),
            "dataset_bounds": None if self.dataset_bounds is None else [list(b) for b in self.dataset_bounds],
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "history": dict(self.history),
            "train": None if self.train_config is None else self.train_config.to_dict(),
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's parameters and buffers, on the CPU."""
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], state_dict: dict[str, torch.Tensor], *,
                      device: Any = None) -> ImageClassifierModel:
        """Rebuild a model written by :meth:`to_metadata` and :meth:`state_dict`.

        Raises
        ------
        ValueError
            Inconsistent metadata or weights that do not fit the architecture.
        """
        net_config = ClassifierNetConfig.from_dict(meta["net"])
        net = ResidualClassifier(net_config)
        try:
            net.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"weights do not fit the architecture: {exc}") from None
        bounds, shape, train = meta.get("dataset_bounds"), meta.get("input_shape"), meta.get("train")
        return cls(net_config, meta["class_names"], net,
                   normalization=NormalizeConfig.from_dict(meta.get("normalization") or {}),
                   dataset_bounds=None if bounds is None else (bounds[0], bounds[1]),
                   input_shape=None if shape is None else tuple(shape), history=meta.get("history") or {},
                   train_config=None if train is None else ClassifyTrainConfig.from_dict(train), device=device)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


__all__ = ["EXPLAIN_METHODS", "KIND", "ImageClassifierModel"]
