"""Trained U-Nets as :class:`pixlearn.models.protocol.PixelModel` objects, and :func:`fit_network`.

:class:`NetworkModel` holds the architecture (:class:`~pixlearn.nets.unet.UNetConfig`), the
torch module and what prediction needs (task, normalisation, class names, instance thresholds).
Its metadata is JSON and its weights a flat ``dict[str, Tensor]``, which
:mod:`pixlearn.models.model_file` writes as ``model.json`` and ``weights.safetensors``.

What the network's raw output becomes in :meth:`NetworkModel.predict_raw`:

* ``semantic``: softmax class probabilities ``(..., K)``;
* ``instances``: ``sigmoid`` of both channels: foreground probability and normalised boundary
  distance ``(..., 2)``, the representation of :mod:`pixlearn.postprocess.instances`;
* ``restore``: the restored image in normalised units ``(..., K)``.

Prediction runs an eval-only copy of the network (:func:`pixlearn.nets.inference.inference_copy`:
batch norms folded into the convolutions, channels-last memory, which is the layout of the
canonical ``(B, ..., C)`` blocks). It is built on the first prediction and rebuilt when the
device, the precision or any parameter or buffer of :attr:`NetworkModel.net` changes; the
training weights and :meth:`NetworkModel.state_dict` are never touched.

Its arithmetic is :attr:`NetworkModel.precision`: ``"fp32"`` by default (outputs equal the
training module's up to float rounding), ``"bf16"``, or ``"auto"`` (``pixlearn predict`` uses
it): on a CPU, the path measured fastest for this network on the shape of the first batch it
predicts (:func:`pixlearn.nets.network_probe.network_path`, cached per machine, architecture and
batch shape): fp32 or bf16, contiguous or channels-last, fp32 in onnxruntime
(:mod:`pixlearn.nets.onnx_engine`), or fp32 or bf16 in OpenVINO (:mod:`pixlearn.nets.openvino_engine`);
an outside engine that cannot be built or run logs a warning and the model predicts with torch,
:attr:`NetworkModel.precision_path` then says ``"fallback"``. bf16 probabilities stay within
:data:`pixlearn.nets.precision.BF16_TOLERANCE` of fp32 ones on the tests' tiny networks, the fp32
engines' within :data:`pixlearn.nets.precision.FP32_TOLERANCE`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.models.protocol import TASKS, crop_outputs
from pixlearn.nets.config import PRECISIONS
from pixlearn.nets.inference import inference_copy
from pixlearn.nets.network_probe import network_path, nominal_batch, probe_batch
from pixlearn.nets.onnx_engine import OnnxEngine, build_engine
from pixlearn.nets.precision import PrecisionPath, resolve_device
from pixlearn.nets.training import TrainConfig
from pixlearn.nets.unet import UNet, UNetConfig, receptive_field_halo, size_divisor

logger = logging.getLogger(__name__)


class NetworkModel:
    """A trained (or freshly initialised) U-Net with everything prediction needs.

    Parameters
    ----------
    unet : UNetConfig
    task : {"semantic", "instances", "restore"}
    net : UNet, optional
        The module; a new one (random weights) when ``None``.
    normalization : NormalizeConfig, optional
    class_names : sequence of str, optional
        Semantic task: one name per output class.
    thresholds : dict, optional
        Instance post-processing parameters (:class:`pixlearn.postprocess.instances.InstanceThresholds`).
    history : dict, optional
        Training summary (:meth:`pixlearn.nets.training.History.summary`).
    train_config : TrainConfig, optional
    object_diameter : float, optional
        Instances task: median equivalent diameter (px) of the training objects, so that
        images of another magnification can be rescaled to it (:mod:`pixlearn.predict.rescale`).
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    precision : {"fp32", "bf16", "auto"}
        Arithmetic of predictions (see the module docstring and :meth:`set_precision`).
    """

    kind = "network"

    def __init__(
        self,
        unet: UNetConfig,
        task: str,
        net: UNet | None = None,
        *,
        normalization: NormalizeConfig | None = None,
        class_names: Sequence[str] = (),
        thresholds: dict[str, Any] | None = None,
        history: dict[str, Any] | None = None,
        train_config: TrainConfig | None = None,
        object_diameter: float | None = None,
        device: Any = None,
        precision: str = "fp32",
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not one of {TASKS}")
        if task == "instances" and unet.out_channels != 2:
            raise ValueError(f"the instances task needs 2 network outputs, got {unet.out_channels}")
        if class_names and len(class_names) != unet.out_channels:
            raise ValueError(f"{len(class_names)} class names for {unet.out_channels} outputs")
        self.unet = unet
        self.task = task
        self.net = UNet(unet) if net is None else net
        self.normalization = NormalizeConfig() if normalization is None else normalization
        self.class_names = tuple(str(c) for c in class_names)
        self.thresholds = None if thresholds is None else dict(thresholds)
        self.history = {} if history is None else dict(history)
        self.train_config = train_config
        self.object_diameter = None if object_diameter is None else float(object_diameter)
        self._device = resolve_device(device)
        self.net.to(self._device).eval()
        self._fast: tuple[tuple[Any, ...], torch.nn.Module | OnnxEngine | None] | None = None
        self._path: PrecisionPath | None = None
        self._precision = "fp32"
        self.set_precision(precision)

    # ---------------------------------------------------------------- PixelModel attributes
    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return self.unet.ndim

    @property
    def n_channels(self) -> int:
        """Input channels."""
        return self.unet.in_channels

    @property
    def n_outputs(self) -> int:
        """Channels of :meth:`predict_raw`'s output."""
        return self.unet.out_channels

    @property
    def halo(self) -> tuple[int, ...]:
        """Receptive-field margin per spatial axis (:func:`~pixlearn.nets.unet.receptive_field_halo`)."""
        return receptive_field_halo(self.unet)

    @property
    def size_divisor(self) -> int:
        """Tiles must start at multiples of this (the LCM of the per-axis pooling factors)."""
        return math.lcm(*size_divisor(self.unet))

    @property
    def bytes_per_pixel(self) -> float:
        """Rough inference memory per input pixel (float32 activations), for tile sizing."""
        total, pixels = 0.0, 1.0 / float(np.prod(self.unet.stem_factors))
        for level, width in enumerate(self.unet.channels):
            total += 4.0 * width * pixels * 3
            if level < self.unet.depth:
                pixels /= float(np.prod(self.unet.level_pool_kernels[level]))
        return total + 4.0 * (self.n_channels + 2 * self.n_outputs)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self._device

    #: Overlapping tiles averaged with smooth weights.
    tile_mode = "blended"
    #: A batch of tiles is one forward pass.
    batches_tiles = True

    def memory_budget_bytes(self) -> float | None:
        """Half the free memory of the CUDA device the weights are on; ``None`` on other devices."""
        if self._device.type != "cuda":
            return None
        free, _ = torch.cuda.mem_get_info(self._device)
        return free / 2

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """:meth:`predict_batch` of the whole blocks, cropped to `inner` (a network sees the whole tile)."""
        return crop_outputs(self.predict_batch(blocks), inner, labels)

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Instance labels of an outputs block.

        The ``instances`` task's (foreground, distance) outputs: the seeded watershed of
        :func:`pixlearn.postprocess.instances.instances_from_outputs` with the stored
        :attr:`thresholds` (defaults when there are none or they are unusable); other tasks'
        outputs: connected components of the foreground
        (:func:`pixlearn.postprocess.labels.label_foreground`).
        """
        from pixlearn.postprocess import instances
        from pixlearn.postprocess.labels import label_foreground

        if self.task != "instances":
            return label_foreground(outputs)
        return instances.instances_from_outputs(outputs, instances.stored_thresholds(self.thresholds))

    def to(self, device: Any) -> NetworkModel:
        """Move the weights to `device` (``None``: CUDA when available, else CPU); returns self."""
        self._device = resolve_device(device)
        self.net.to(self._device)
        self._fast = None
        self._path = None
        return self

    def set_precision(self, precision: str) -> NetworkModel:
        """Predict in ``"fp32"``, ``"bf16"`` or ``"auto"`` (resolved on the next prediction); returns self.

        Raises
        ------
        ValueError
            Another value.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self._precision = precision
        self._path = None
        return self

    @property
    def precision(self) -> str:
        """The precision setting of predictions (change it with :meth:`set_precision`)."""
        return self._precision

    @property
    def precision_path(self) -> PrecisionPath:
        """The path predictions take: :attr:`precision` resolved on this device, once per model
        (``"auto"`` on a CPU: measured on the first batch predicted, each axis at least that of one
        nominal tile, :func:`pixlearn.nets.network_probe.probe_batch`)."""
        return self._resolved(nominal_batch(self.n_channels, size_divisor(self.unet)))

    def _resolved(self, batch_shape: tuple[int, ...]) -> PrecisionPath:
        if self._path is None:
            divisor = size_divisor(self.unet)
            self._path = network_path(self.net, self.unet.to_dict(), self.precision, self._device, ndim=self.ndim,
                                      divisor=divisor, batch_shape=probe_batch(batch_shape, divisor))
        return self._path

    # ---------------------------------------------------------------- prediction
    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Outputs for a batch of normalised canonical blocks.

        Parameters
        ----------
        blocks : ndarray of shape (B, M, N, C) or (B, P, M, N, C), float32

        Returns
        -------
        outputs : ndarray of shape (B, M, N, K) or (B, P, M, N, K), float32
            See the module docstring for what the channels mean.
        """
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != self.ndim + 2 or blocks.shape[-1] != self.n_channels:
            raise ValueError(
                f"expected blocks of shape (B, {'P, ' if self.ndim == 3 else ''}M, N, {self.n_channels}), got {blocks.shape}"
            )
        path = self._resolved((blocks.shape[0], self.n_channels) + blocks.shape[1:-1])
        raw = self._engine_outputs(blocks) if path.engine != "torch" else None
        with torch.inference_mode():
            if raw is None:
                raw = self._torch_outputs(blocks)
            if self.task == "semantic":
                raw = torch.softmax(raw, dim=1)
            elif self.task == "instances":
                raw = torch.sigmoid(raw)
            out = raw.permute((0,) + tuple(range(2, self.ndim + 2)) + (1,)).cpu()
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)

    def _torch_outputs(self, blocks: np.ndarray) -> torch.Tensor:
        """Raw float32 outputs ``(B, K, *S)`` of the fast copy, along the (torch) precision path."""
        # (B, ..., C) memory viewed as (B, C, ...): channels-last, no copy on the CPU
        order = (0, self.ndim + 1) + tuple(range(1, self.ndim + 1))
        x = torch.from_numpy(np.ascontiguousarray(blocks)).permute(order)
        path = self.precision_path
        x = x.to(self._device).contiguous(memory_format=path.memory_format(self.ndim))
        net = self._inference_net()
        if not isinstance(net, torch.nn.Module):
            raise RuntimeError(f"the {path.name} path has no torch module")  # a bug, never a user's mistake
        with torch.inference_mode(), path.autocast(self._device):
            return net(x).float()

    def _engine_outputs(self, blocks: np.ndarray) -> torch.Tensor | None:
        """Raw outputs ``(B, K, *S)`` of the outside engine (onnxruntime, OpenVINO); ``None`` (a
        warning, and torch from now on: source ``"fallback"``) when it cannot be built or run."""
        engine = self._inference_net()
        if isinstance(engine, OnnxEngine):
            try:
                return torch.from_numpy(engine(np.moveaxis(blocks, -1, 1)))
            except Exception as exc:  # the runtimes' errors have no common base class
                logger.warning("%s failed on a batch of shape %s (%s: %s); predicting with torch",
                               engine.runtime, blocks.shape, type(exc).__name__, exc)
        self._path = dataclasses.replace(self.precision_path, channels_last=True, engine="torch", source="fallback")
        return None

    def _inference_net(self) -> torch.nn.Module | OnnxEngine | None:
        """The eval-only fast copy of :attr:`net` (or its outside engine, ``None`` where that
        failed), rebuilt when the device, the path, torch's thread count, the module or any of its
        tensors changed (an optimiser step or ``load_state_dict`` bumps a tensor's version)."""
        self.net.eval()
        path = self.precision_path
        key = (self._device, path.channels_last, id(self.net),
               tuple(_tensor_state(t) for t in (*self.net.parameters(), *self.net.buffers())),
               path.engine, path.dtype, torch.get_num_threads() if path.engine != "torch" else None)
        if self._fast is None or self._fast[0] != key:
            if path.engine != "torch":
                fast: torch.nn.Module | OnnxEngine | None = build_engine(
                    self.net, self.ndim, self.n_channels, size_divisor(self.unet), runtime=path.engine, dtype=path.dtype)
            else:
                fast = inference_copy(self.net, self.ndim, channels_last=path.channels_last)
            self._fast = (key, fast)
        return self._fast[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (Dask scatters models) without the fast copy; it is rebuilt where it is used."""
        state = self.__dict__.copy()
        state["_fast"] = None
        state["_path"] = None  # resolved again on the machine that predicts
        return state

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Map a normalised canonical block ``(..., C)`` float32 to ``(..., n_outputs)`` float32."""
        image = np.asarray(image)
        if image.ndim != self.ndim + 1:
            raise ValueError(f"expected a canonical {self.ndim}D block (..., C), got shape {image.shape}")
        return self.predict_batch(image[np.newaxis])[0]

    # ---------------------------------------------------------------- persistence
    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description: architecture, task, normalisation, classes, thresholds, training."""
        return {
            "task": self.task,
            "unet": self.unet.to_dict(),
            "normalization": self.normalization.to_dict(),
            "class_names": list(self.class_names),
            "thresholds": None if self.thresholds is None else dict(self.thresholds),
            "history": dict(self.history),
            "train": None if self.train_config is None else self.train_config.to_dict(),
            "halo": list(self.halo),
            "size_divisor": self.size_divisor,
            "object_diameter": self.object_diameter,
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's parameters and buffers, on the CPU."""
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], state_dict: dict[str, torch.Tensor], *, device: Any = None,
                      precision: str = "fp32") -> NetworkModel:
        """Rebuild a model written by :meth:`to_metadata` and :meth:`state_dict`.

        Raises
        ------
        ValueError
            Inconsistent metadata or weights that do not fit the architecture.
        """
        unet = UNetConfig.from_dict(meta["unet"])
        net = UNet(unet)
        try:
            net.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"weights do not fit the architecture: {exc}") from None
        train_meta = meta.get("train")
        return cls(
            unet,
            meta["task"],
            net,
            normalization=NormalizeConfig.from_dict(meta.get("normalization", {})),
            class_names=meta.get("class_names") or (),
            thresholds=meta.get("thresholds"),
            history=meta.get("history") or {},
            train_config=None if train_meta is None else TrainConfig.from_dict(train_meta),
            object_diameter=_positive_or_none(meta.get("object_diameter")),
            device=device,
            precision=precision,
        )


def _positive_or_none(value: Any) -> float | None:
    """A stored diameter: a positive finite number, else ``None`` (older files have none)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    if value is not None:
        raise ValueError(f"object_diameter must be a positive number, got {value!r}")
    return None


def _tensor_state(t: torch.Tensor) -> tuple[int, int]:
    """Storage address and in-place version of a tensor (inference tensors have no version)."""
    return t.data_ptr(), (0 if t.is_inference() else t._version)

