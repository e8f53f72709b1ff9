"""bioimage.io packages as pixlearn models: :func:`load_bioimageio` and :class:`BioimageioModel`.

Loading runs no code from the package. The description is read and format-validated by
:mod:`bioimageio.spec`; then

* ``pytorch_state_dict`` weights are used only when the architecture is pixlearn's own
  (:data:`~pixlearn.models.bioimageio_arch.ARCHITECTURE_CALLABLE` with a valid ``UNetConfig`` as
  keyword arguments): the network is built by pixlearn's code and the tensors are read with
  ``torch.load(weights_only=True)``, giving a :class:`~pixlearn.nets.model.NetworkModel`;
* ``onnx`` weights run in onnxruntime through :class:`BioimageioModel`;
* anything else (another Python architecture, TorchScript or TensorFlow only) is refused with one
  :class:`~pixlearn.errors.ModelFileError` line.

The declared preprocessing becomes the model's :class:`~pixlearn.data.normalize.NormalizeConfig`,
which pixlearn's engine applies once per image: ``scale_range`` over the spatial axes (per
channel, without a reference tensor) is ``percentile`` (bioimage.io adds ``eps`` = 1e-6 to the
denominator, pixlearn does not: a relative difference of about ``eps / (p_high - p_low)``);
``scale_linear`` and ``fixed_zero_mean_unit_variance`` with scalar arguments are ``fixed``;
``ensure_dtype`` is implied. Per-sample ``zero_mean_unit_variance`` and other steps are refused.
Post-processing: ``sigmoid`` and ``softmax`` (channel axis) are applied; a ``scale_linear`` that
undoes a ``fixed`` normalisation of a restoration model is left to the engine (which maps restored
values back to the input's intensity range itself); others are refused.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import ModelFileError
from pixlearn.models.bioimageio_arch import ACTIVATIONS, unet_kwargs_from_architecture
from pixlearn.models.protocol import TASKS, crop_outputs

logger = logging.getLogger(__name__)

SPATIAL = ("z", "y", "x")


class BioimageioModel:
    """A bioimage.io model with ONNX weights, as a :class:`~pixlearn.models.protocol.PixelModel`.

    Parameters
    ----------
    run : callable
        ``(B, C, *S)`` float32 array -> ``(B, K, *S)`` float32 array (after post-processing); spatial
        sizes are valid sizes of the package.
    task : {"semantic", "instances", "restore"}
    n_channels, n_outputs : int
    min_size, step : tuple of int
        Valid spatial sizes per axis: ``min + n * step``.
    halo : tuple of int
    normalization : NormalizeConfig
    thresholds : dict, optional
        Instance post-processing (:class:`pixlearn.postprocess.instances.InstanceThresholds`).
    """

    kind = "bioimageio"
    tile_mode = "blended"
    batches_tiles = True

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, task: str, n_channels: int, n_outputs: int,
                 min_size: tuple[int, ...], step: tuple[int, ...], halo: tuple[int, ...],
                 normalization: NormalizeConfig, thresholds: dict[str, Any] | None = None) -> None:
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not one of {TASKS}")
        self._run = run
        self.task = task
        self.n_channels = int(n_channels)
        self.n_outputs = int(n_outputs)
        self.min_size = tuple(int(m) for m in min_size)
        self.step = tuple(max(1, int(s)) for s in step)
        self._halo = tuple(int(h) for h in halo)
        self.normalization = normalization
        self.thresholds = None if thresholds is None else dict(thresholds)

    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return len(self.min_size)

    @property
    def halo(self) -> tuple[int, ...]:
        """The output halo the package declares, rounded up to multiples of the size divisor."""
        d = self.size_divisor
        return tuple(int(math.ceil(h / d) * d) for h in self._halo)

    @property
    def size_divisor(self) -> int:
        """LCM of the size steps: tiles then start where the network's pooling grid does."""
        return math.lcm(*self.step)

    @property
    def bytes_per_pixel(self) -> float:
        """Unknown activations: a generous guess of 64 float32 feature maps per pixel."""
        return 4.0 * (64 + self.n_channels + 2 * self.n_outputs)

    def memory_budget_bytes(self) -> float | None:
        """``None``: onnxruntime runs on the CPU, in the host memory the engine budgets."""
        return None

    def _valid_size(self, size: int, axis: int) -> int:
        m, s = self.min_size[axis], self.step[axis]
        return m if size <= m else m + int(math.ceil((size - m) / s)) * s

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Outputs ``(B, ..., K)`` for normalised canonical blocks ``(B, ..., C)`` float32.

        Blocks of sizes the package does not take are padded at the high end by edge replication
        to the next valid size (as pixlearn's U-Net pads itself), and the output is cropped back.
        """
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != self.ndim + 2 or blocks.shape[-1] != self.n_channels:
            raise ValueError(f"expected blocks of shape (B, ..., {self.n_channels}) with {self.ndim} spatial axes, "
                             f"got {blocks.shape}")
        spatial = blocks.shape[1:-1]
        pad = [(0, self._valid_size(s, i) - s) for i, s in enumerate(spatial)]
        x = np.pad(blocks, [(0, 0), *pad, (0, 0)], mode="edge") if any(p for _, p in pad) else blocks
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        out = np.asarray(self._run(x), dtype=np.float32)
        out = np.moveaxis(out, 1, -1)[(slice(None), *(slice(0, s) for s in spatial))]
        return np.ascontiguousarray(out)

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Map a normalised canonical block ``(..., C)`` float32 to ``(..., n_outputs)`` float32."""
        return self.predict_batch(np.asarray(image)[np.newaxis])[0]

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """:meth:`predict_batch` of the whole blocks, cropped to `inner` (a network sees the whole tile)."""
        return crop_outputs(self.predict_batch(blocks), inner, labels)

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Seeded watershed for the instances task (stored thresholds), else connected components."""
        from pixlearn.postprocess import instances
        from pixlearn.postprocess.labels import label_foreground

        if self.task != "instances":
            return label_foreground(outputs)
        return instances.instances_from_outputs(outputs, instances.stored_thresholds(self.thresholds))

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description."""
        return {"task": self.task, "n_channels": self.n_channels, "n_outputs": self.n_outputs,
                "min_size": list(self.min_size), "step": list(self.step), "halo": list(self.halo),
                "normalization": self.normalization.to_dict(), "thresholds": self.thresholds}


# ------------------------------------------------------------------------------------ loading

def load_bioimageio(package: str | os.PathLike[str], *, weight_format: str | None = None,
                    task: str | None = None, device: Any = None) -> Any:
    """Load a bioimage.io model package (``.zip``, folder or ``rdf.yaml``) as a pixlearn model.

    Parameters
    ----------
    package : path-like
    weight_format : {"pytorch_state_dict", "onnx"}, optional
        Default: pixlearn's own state dict when present, else ONNX.
    task : {"semantic", "instances", "restore"}, optional
        Default: the task pixlearn stored in the package's ``config``; ``"semantic"`` for
        packages made elsewhere (outputs read as class scores).
    device : str or torch.device, optional
        Where state-dict weights go (ONNX runs on the CPU).

    Returns
    -------
    model : PixelModel
        A :class:`~pixlearn.nets.model.NetworkModel` (state dict) or a :class:`BioimageioModel` (ONNX).

    Raises
    ------
    ModelFileError
        An invalid package, unsupported tensors or processing, or weights pixlearn does not run.
    """
    from bioimageio.spec import InvalidDescr, load_model_description

    path = Path(package)
    try:
        descr = load_model_description(path, perform_io_checks=True)
    except Exception as exc:  # bioimageio raises several kinds; one line for the user
        raise ModelFileError(f"not a readable bioimage.io model ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                             path) from None
    if isinstance(descr, InvalidDescr) or getattr(descr, "format_version", "").split(".")[:2] != ["0", "5"]:
        raise ModelFileError("not a valid bioimage.io model of format 0.5", path)
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ModelFileError(f"pixlearn runs models with one input and one output, this one has "
                             f"{len(descr.inputs)} and {len(descr.outputs)}", path)
    pixlearn_meta = _pixlearn_config(descr)
    task = task or pixlearn_meta.get("task") or "semantic"
    if task not in TASKS:
        raise ModelFileError(f"task {task!r} is not one of {TASKS}", path)
    in_axes = _axes_info(descr.inputs[0], path)
    normalization = _normalization(descr.inputs[0].preprocessing, path)
    weights = descr.weights
    choice = weight_format or ("pytorch_state_dict" if _is_pixlearn_arch(weights.pytorch_state_dict) else "onnx")
    if choice == "pytorch_state_dict":
        if weights.pytorch_state_dict is None:
            raise ModelFileError("the package has no pytorch_state_dict weights", path)
        return _load_state_dict(weights.pytorch_state_dict, task, normalization, pixlearn_meta, path, device)
    if choice != "onnx":
        raise ModelFileError(f"weight format {choice!r}: pixlearn loads pytorch_state_dict or onnx", path)
    if weights.onnx is None:
        if weights.pytorch_state_dict is not None:  # the state dict of another architecture
            unet_kwargs_from_architecture(str(getattr(weights.pytorch_state_dict.architecture, "callable", "")),
                                          {}, path)
        raise ModelFileError("the package has neither onnx weights nor a pixlearn pytorch_state_dict", path)
    post = _postprocessing(descr.outputs[0].postprocessing, task, normalization, path)
    session = _onnx_session(weights.onnx, path)
    run = _onnx_runner(session, in_axes["order"], _axes_info(descr.outputs[0], path, output=True)["order"], post)
    n_outputs = _n_channels(descr.outputs[0])
    return BioimageioModel(run, task=task, n_channels=in_axes["channels"], n_outputs=n_outputs,
                           min_size=in_axes["min"], step=in_axes["step"], halo=_halo(descr.outputs[0], in_axes),
                           normalization=normalization, thresholds=pixlearn_meta.get("thresholds"))


def _pixlearn_config(descr: Any) -> dict[str, Any]:
    extra = getattr(descr.config, "model_extra", None) or {}
    section = extra.get("pixlearn")
    model = section.get("model") if isinstance(section, dict) else None
    return model if isinstance(model, dict) else {}


def _is_pixlearn_arch(entry: Any) -> bool:
    from pixlearn.models.bioimageio_arch import ARCHITECTURE_CALLABLE

    return entry is not None and str(getattr(entry.architecture, "callable", "")) == ARCHITECTURE_CALLABLE


def _n_channels(tensor: Any) -> int:
    for axis in tensor.axes:
        if axis.type == "channel":
            return len(axis.channel_names)
    return 1


def _axes_info(tensor: Any, path: Path, *, output: bool = False) -> dict[str, Any]:
    """Axis order (ids), channels and valid sizes of a tensor; only batch, channel, z, y, x."""
    ids = [str(a.id) for a in tensor.axes]
    spatial = [i for i in ids if i in SPATIAL]
    unknown = [i for i in ids if i not in ("batch", "channel", *SPATIAL)]
    if unknown or len(spatial) not in (2, 3) or spatial != [s for s in SPATIAL if s in spatial]:
        raise ModelFileError(f"tensor {tensor.id!r} has axes {ids}: pixlearn takes batch, channel, [z,] y, x", path)
    info: dict[str, Any] = {"order": ids, "channels": _n_channels(tensor), "min": [], "step": []}
    if output:
        return info
    for axis in tensor.axes:
        if str(axis.id) not in SPATIAL:
            continue
        size = axis.size
        if isinstance(size, int):
            raise ModelFileError(f"input axis {axis.id!r} has a fixed size {size}: pixlearn tiles need variable sizes", path)
        if not hasattr(size, "step"):
            raise ModelFileError(f"input axis {axis.id!r} has a size pixlearn cannot tile ({type(size).__name__})", path)
        info["min"].append(int(size.min))
        info["step"].append(int(size.step))
    return info


def _halo(tensor: Any, in_axes: dict[str, Any]) -> tuple[int, ...]:
    halos = {str(a.id): int(getattr(a, "halo", 0) or 0) for a in tensor.axes}
    return tuple(halos.get(i, 0) for i in in_axes["order"] if i in SPATIAL)


def _normalization(steps: Any, path: Path) -> NormalizeConfig:
    found: list[NormalizeConfig] = []
    for step in steps:
        kind, kw = str(step.id), step.kwargs
        if kind == "ensure_dtype":
            continue
        if kind == "scale_range" and kw.reference_tensor is None and "channel" not in [str(a) for a in (kw.axes or ["channel"])]:
            found.append(NormalizeConfig(mode="percentile", pmin=float(kw.min_percentile), pmax=float(kw.max_percentile)))
        elif kind == "scale_linear" and np.ndim(kw.gain) == 0 and np.ndim(kw.offset) == 0 and float(kw.gain) > 0:
            low = -float(kw.offset) / float(kw.gain)
            found.append(NormalizeConfig(mode="fixed", low=low, high=low + 1.0 / float(kw.gain)))
        elif kind == "fixed_zero_mean_unit_variance" and np.ndim(kw.mean) == 0 and np.ndim(kw.std) == 0:
            found.append(NormalizeConfig(mode="fixed", low=float(kw.mean), high=float(kw.mean) + float(kw.std)))
        else:
            raise ModelFileError(f"preprocessing {kind!r} with these arguments has no pixlearn equivalent", path)
    if len(found) > 1:
        raise ModelFileError(f"{len(found)} normalisation steps in the preprocessing; pixlearn applies one", path)
    return found[0] if found else NormalizeConfig(mode="none")


def _postprocessing(steps: Any, task: str, normalization: NormalizeConfig, path: Path) -> list[str]:
    ops = []
    for step in steps:
        kind, kw = str(step.id), step.kwargs
        if kind == "ensure_dtype":
            continue
        if kind in ("sigmoid", "softmax"):
            if kind == "softmax" and str(getattr(kw, "axis", "channel")) != "channel":
                raise ModelFileError("softmax over an axis other than channel is not supported", path)
            ops.append(kind)
        elif kind == "scale_linear" and task == "restore" and normalization.mode == "fixed" and np.isclose(
                float(np.asarray(kw.gain)), normalization.high - normalization.low) and np.isclose(
                float(np.asarray(kw.offset)), normalization.low):
            continue  # undoes the fixed normalisation: the engine denormalises restored images itself
        else:
            raise ModelFileError(f"postprocessing {kind!r} is not supported by pixlearn", path)
    return ops


def _onnx_session(entry: Any, path: Path) -> Any:
    import onnxruntime

    try:
        data = entry.get_reader().read()
        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelFileError(f"onnx weights do not load ({type(exc).__name__}: {str(exc).splitlines()[0]})", path) from None


def _onnx_runner(session: Any, in_order: list[str], out_order: list[str], post: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    """``(B, C, *S) -> (B, K, *S)`` around a session whose tensors have the package's axis orders."""
    canonical_in = ["batch", "channel"] + [a for a in in_order if a in SPATIAL]
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        data = x
        if "channel" not in in_order:
            data = data[:, 0]
            present = ["batch"] + canonical_in[2:]
        else:
            present = canonical_in
        if "batch" not in in_order:
            raise ValueError("packages without a batch axis are not supported")
        data = np.transpose(data, [present.index(a) for a in in_order])
        out = np.asarray(session.run([name_out], {name_in: np.ascontiguousarray(data, np.float32)})[0], np.float32)
        have = list(out_order) if "channel" in out_order else None
        if have is None:
            out, have = out[:, np.newaxis], ["batch", "channel"] + [a for a in out_order if a != "batch"]
        out = np.transpose(out, [have.index(a) for a in ["batch", "channel"] + [a for a in have if a in SPATIAL]])
        for op in post:
            if op == "sigmoid":
                out = (1.0 / (1.0 + np.exp(-out))).astype(np.float32)
            else:
                e = np.exp(out - out.max(axis=1, keepdims=True))
                out = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return out.astype(np.float32)

    return run


def _load_state_dict(entry: Any, task: str, normalization: NormalizeConfig, meta: dict[str, Any],
                     path: Path, device: Any) -> Any:
    import torch

    from pixlearn.models.validate_network import validate_state_shapes, validate_unet_config
    from pixlearn.nets.model import NetworkModel
    from pixlearn.nets.unet import UNet

    arch = entry.architecture
    unet, activation = unet_kwargs_from_architecture(str(arch.callable), dict(arch.kwargs or {}), path)
    if activation != ACTIVATIONS[task]:
        raise ModelFileError(f"the architecture's activation {activation!r} does not fit the {task} task", path)
    validate_unet_config(unet, path)
    try:
        raw = torch.load(io.BytesIO(entry.get_reader().read()), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"pytorch_state_dict weights do not load ({type(exc).__name__})", path) from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k.startswith("net.") for k in raw):
        raise ModelFileError("pytorch_state_dict keys are not those of pixlearn's PixlearnUNet", path)
    state = {k.removeprefix("net."): v for k, v in raw.items()}
    validate_state_shapes(unet, state, path)
    net = UNet(unet)
    net.load_state_dict(state, strict=True)
    class_names = meta.get("class_names") if task == "semantic" else ()
    return NetworkModel(unet, task, net, normalization=normalization, class_names=class_names or (),
                        thresholds=meta.get("thresholds"), device=device)
