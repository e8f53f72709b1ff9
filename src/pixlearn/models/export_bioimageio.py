"""Export a pixlearn network as a bioimage.io model package (format 0.5): :func:`export_bioimageio`.

The package's ``rdf.yaml`` is built with :mod:`bioimageio.spec`'s Python descriptions and holds

* weights in three formats, converted from the model (:mod:`pixlearn.models.convert`):
  ``pytorch_state_dict`` with its architecture source (:mod:`pixlearn.models.bioimageio_arch`),
  ``torchscript`` and ``onnx``; all three include the task's output activation;
* one input ``(batch, channel, [z,] y, x)`` with the preprocessing of the model's
  :class:`~pixlearn.data.normalize.NormalizeConfig` (``percentile``: ``scale_range`` per sample and
  channel with the stored percentiles; ``fixed``: ``scale_linear``; ``none``: nothing), after
  ``ensure_dtype`` float32;
* spatial sizes ``min + n * step`` with ``step`` the network's size divisor per axis and ``min``
  the smallest multiple of it above twice the halo; the output has the input's size and the
  receptive-field halo (:func:`pixlearn.nets.unet.receptive_field_halo`);
* test tensors: an input (given, or a seeded synthetic image) and the output pixlearn computes
  for it; a README with the post-processing (instances), a validation section, training data and
  licence (:mod:`pixlearn.models.bioimageio_readme`).

Needs the ``exchange`` extra (``pip install "pixlearn[exchange]"``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.normalize import apply_normalization, compute_normalization
from pixlearn.errors import PixlearnError
from pixlearn.models.bioimageio_arch import (
    ARCHITECTURE_CALLABLE,
    ARCHITECTURE_FILE,
    architecture_kwargs,
    architecture_source,
)
from pixlearn.models.bioimageio_readme import readme_text
from pixlearn.models.convert import save_onnx, save_state_dict, save_torchscript

logger = logging.getLogger(__name__)

INPUT_ID = "input"
OUTPUT_ID = "output"
#: A citation every package carries: the U-Net paper (a DOI, never fetched).
UNET_DOI = "10.1007/978-3-319-24574-4_28"


def axis_sizes(divisor: Sequence[int], halo: Sequence[int]) -> list[tuple[int, int]]:
    """``(min, step)`` per spatial axis: multiples of the divisor, ``min > 2 * halo``.

    Examples
    --------
    >>> axis_sizes((2, 2), (10, 10))
    [(22, 2), (22, 2)]
    """
    return [(((2 * h) // d + 1) * d, d) for d, h in zip(divisor, halo)]


def _identifier(name: str, fallback: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(name)).strip("_")
    return text if text and not text[0].isdigit() else fallback


def synthetic_test_image(shape: Sequence[int], n_channels: int, seed: int = 0) -> np.ndarray:
    """A seeded smooth test image ``(*shape, C)`` float32 in about 0..1000 (blobs on noise)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = rng.random(tuple(shape) + (n_channels,), dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=[2.0] * len(shape) + [0.0])
    return (1000.0 * (smooth - smooth.min()) / (np.ptp(smooth) + 1e-12) + 10.0 * noise).astype(np.float32)


def _load_network(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from pixlearn.models.model_file import load_model

        model = load_model(model, device="cpu")
    if getattr(model, "kind", None) != "network":
        raise PixlearnError("bioimage.io export takes network models only (classical models: export_onnx_classical)")
    return model.to("cpu")


def _preprocessing(model: Any, spatial_ids: list[Any]) -> list[Any]:
    from bioimageio.spec.model import v0_5 as bm

    steps: list[Any] = [bm.EnsureDtypeDescr(kwargs=bm.EnsureDtypeKwargs(dtype="float32"))]
    norm = model.normalization
    if norm.polarity != "keep":
        raise PixlearnError(f"bioimage.io preprocessing cannot invert per image (this model's polarity is "
                            f"{norm.polarity!r}); export a model trained with polarity 'keep'")
    if norm.mode == "percentile":
        if norm.pmax <= 1.0:
            raise PixlearnError(f"bioimage.io's scale_range needs an upper percentile above 1, this model has {norm.pmax}")
        steps.append(bm.ScaleRangeDescr(kwargs=bm.ScaleRangeKwargs(
            axes=tuple(spatial_ids), min_percentile=float(norm.pmin), max_percentile=float(norm.pmax))))
    elif norm.mode == "fixed":
        gain = 1.0 / (norm.high - norm.low)
        steps.append(bm.ScaleLinearDescr(kwargs=bm.ScaleLinearKwargs(gain=gain, offset=-norm.low * gain)))
    return steps


def _postprocessing(model: Any) -> list[Any]:
    """Restoration with fixed normalisation: back to input units (percentile: stays normalised)."""
    from bioimageio.spec.model import v0_5 as bm

    norm = model.normalization
    if model.task == "restore" and norm.mode == "fixed":
        return [bm.ScaleLinearDescr(kwargs=bm.ScaleLinearKwargs(gain=norm.high - norm.low, offset=norm.low))]
    return []


def expected_output(model: Any, image: np.ndarray) -> np.ndarray:
    """What the package must return for a canonical `image` ``(..., C)``: ``(1, K, ...)`` float32.

    pixlearn's whole-image prediction of the normalised image (the package normalises per
    sample, as pixlearn does per image), in the package's units (see :func:`_postprocessing`).
    """
    low, high = compute_normalization(image, model.normalization)
    out = model.predict_batch(apply_normalization(image, low, high)[np.newaxis])
    if model.task == "restore" and model.normalization.mode == "fixed":
        out = out * np.float32(model.normalization.high - model.normalization.low) + np.float32(model.normalization.low)
    return np.ascontiguousarray(np.moveaxis(out, -1, 1), dtype=np.float32)


def export_bioimageio(
    model: Any,
    output: str | os.PathLike[str],
    *,
    authors: Sequence[str],
    name: str | None = None,
    description: str | None = None,
    license: str = "CC-BY-4.0",
    training_data: str | None = None,
    test_image: np.ndarray | None = None,
) -> Path:
    """Write a network model as a bioimage.io 0.5 package (one ``.zip`` file).

    Parameters
    ----------
    model : NetworkModel or path-like
        A semantic, instances or restore network (2D or 3D), or the path of its model file.
    output : path-like
        The ``.zip`` package to write (atomically: it appears only when complete).
    authors : sequence of str
        Author names (at least one).
    name, description : str, optional
        Default: from the task and architecture.
    license : str
        SPDX identifier of the weights' licence.
    training_data : str, optional
        What the model was trained on (written to the README).
    test_image : ndarray of shape (M, N, C) or (P, M, N, C), optional
        Raw input for the test tensors; its spatial sizes must be valid sizes of the package
        (``min + n * step`` per axis, see :func:`axis_sizes`). Default: a seeded synthetic image of
        the smallest valid size.

    Returns
    -------
    path : Path

    Raises
    ------
    PixlearnError
        A classical model, no author, or a test image of the wrong shape.
    """
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as bm

    model = _load_network(model)
    if not authors:
        raise PixlearnError("a bioimage.io package needs at least one author (--author)")
    from pixlearn.nets.unet import receptive_field_halo, size_divisor

    divisor, halo = size_divisor(model.unet), receptive_field_halo(model.unet)
    sizes = axis_sizes(divisor, halo)
    if test_image is None:
        test_image = synthetic_test_image([m for m, _ in sizes], model.n_channels)
    test_image = np.asarray(test_image, np.float32)
    spatial = test_image.shape[:-1]
    valid = len(spatial) == model.ndim and test_image.shape[-1] == model.n_channels and all(
        s >= m and (s - m) % step == 0 for s, (m, step) in zip(spatial, sizes))
    if not valid:
        raise PixlearnError(f"test image of shape {test_image.shape} does not fit the package: "
                            f"{model.n_channels} channel(s) last, sizes min + n * step with (min, step) = {sizes}")
    names = ["z", "y", "x"][-model.ndim:]
    spatial_ids = [bm.AxisId(n) for n in names]
    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        test_in = np.ascontiguousarray(np.moveaxis(test_image, -1, 0)[np.newaxis])
        np.save(tmp / "test_input.npy", test_in)
        np.save(tmp / "test_output.npy", expected_output(model, test_image))
        (tmp / ARCHITECTURE_FILE).write_text(architecture_source(), encoding="utf-8")
        save_state_dict(model, tmp / "weights.pt")
        example = apply_normalization(test_image, *compute_normalization(test_image, model.normalization))
        example = np.ascontiguousarray(np.moveaxis(example, -1, 0)[np.newaxis])
        save_torchscript(model, example, tmp / "weights_torchscript.pt")
        save_onnx(model, example, tmp / "weights.onnx", input_name=INPUT_ID, output_name=OUTPUT_ID)
        (tmp / "README.md").write_text(readme_text(model, authors, training_data, license, sizes, halo), encoding="utf-8")
        descr = _describe(model, tmp, authors=authors, name=name, description=description, license=license,
                          sizes=sizes, halo=halo, spatial_ids=spatial_ids)
        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(output) as target:
            save_bioimageio_package(descr, output_path=target)
    logger.info("wrote bioimage.io package %s", output)
    return output


def _describe(model: Any, tmp: Path, *, authors: Sequence[str], name: str | None, description: str | None,
              license: str, sizes: list[tuple[int, int]], halo: Sequence[int], spatial_ids: list[Any]) -> Any:
    """The :class:`bioimageio.spec.model.v0_5.ModelDescr` of the files written in `tmp`."""
    from bioimageio.spec.model import v0_5 as bm

    input_axes: list[Any] = [bm.BatchAxis(), bm.ChannelAxis(
        channel_names=[bm.Identifier(f"channel{i}") for i in range(model.n_channels)])]
    input_axes += [bm.SpaceInputAxis(id=a, size=bm.ParameterizedSize(min=m, step=s)) for a, (m, s) in zip(spatial_ids, sizes)]
    out_names = {
        "semantic": [_identifier(c, f"class{i}") for i, c in enumerate(model.class_names)] or
                    [f"class{i}" for i in range(model.n_outputs)],
        "instances": ["foreground", "distance"],
        "restore": [f"restored{i}" for i in range(model.n_outputs)],
    }[model.task]
    output_axes: list[Any] = [bm.BatchAxis(), bm.ChannelAxis(channel_names=[bm.Identifier(n) for n in out_names])]
    output_axes += [bm.SpaceOutputAxisWithHalo(id=a, halo=h, size=bm.SizeReference(tensor_id=bm.TensorId(INPUT_ID), axis_id=a))
                    for a, h in zip(spatial_ids, halo)]
    inputs = [bm.InputTensorDescr(
        id=bm.TensorId(INPUT_ID), axes=input_axes, test_tensor=bm.FileDescr(source=tmp / "test_input.npy"),
        description="raw intensities", preprocessing=_preprocessing(model, spatial_ids))]
    what = {"semantic": "class probabilities (softmax)", "instances": "foreground probability and normalised distance",
            "restore": "restored image"}[model.task]
    outputs = [bm.OutputTensorDescr(
        id=bm.TensorId(OUTPUT_ID), axes=output_axes, test_tensor=bm.FileDescr(source=tmp / "test_output.npy"),
        description=what, postprocessing=_postprocessing(model))]
    weights = _weights(model, tmp)
    from pixlearn import __version__

    dims = f"{model.ndim}D"
    return bm.ModelDescr(
        name=name or f"pixlearn {dims} U-Net {model.task}",
        description=description or f"A {dims} U-Net (depth {model.unet.depth}) trained with pixlearn for {model.task}: {what}.",
        authors=[bm.Author(name=a) for a in authors],
        cite=[bm.CiteEntry(text="Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation",
                           doi=bm.Doi(UNET_DOI))],
        license=bm.LicenseId(license),
        documentation=bm.FileDescr(source=tmp / "README.md"),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        tags=["pixlearn", "unet", model.task, dims.lower()],
        version=bm.Version("0.1.0"),
        config=bm.Config.model_validate({"pixlearn": {"version": __version__, "model": _json_safe(model.to_metadata())}}),
    )


def _weights(model: Any, tmp: Path) -> Any:
    """The weights entry: the state dict with its architecture file, TorchScript and ONNX beside it."""
    import torch
    from bioimageio.spec.model import v0_5 as bm

    torch_version = bm.Version(torch.__version__.split("+")[0])
    state_dict = bm.PytorchStateDictWeightsDescr(
        source=tmp / "weights.pt", pytorch_version=torch_version,
        architecture=bm.ArchitectureFromFileDescr(source=tmp / ARCHITECTURE_FILE, callable=bm.Identifier(ARCHITECTURE_CALLABLE),
                                                  kwargs=architecture_kwargs(model.unet, model.task)))
    return bm.WeightsDescr(
        pytorch_state_dict=state_dict,
        torchscript=bm.TorchscriptWeightsDescr(source=tmp / "weights_torchscript.pt", pytorch_version=torch_version,
                                               parent="pytorch_state_dict"),
        onnx=bm.OnnxWeightsDescr(source=tmp / "weights.onnx", opset_version=17, parent="pytorch_state_dict"),
    )


def _json_safe(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def onnx_for_model(model: Any, output: str | os.PathLike[str]) -> Path:
    """Write a network's ONNX graph alone (input ``(B, C, *S)`` normalised, sizes as the package's)."""
    from pixlearn.nets.unet import receptive_field_halo, size_divisor

    model = _load_network(model)
    sizes = axis_sizes(size_divisor(model.unet), receptive_field_halo(model.unet))
    example = np.zeros((1, model.n_channels, *[m for m, _ in sizes]), np.float32)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as target:
        save_onnx(model, example, target, input_name=INPUT_ID, output_name=OUTPUT_ID)
    return output
