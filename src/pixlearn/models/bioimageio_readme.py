"""The README of an exported bioimage.io package: what the model does, how to validate it, its data and licence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixlearn import __version__


def _postprocessing_text(model: Any) -> str:
    if model.task == "semantic":
        names = ", ".join(model.class_names) or f"{model.n_outputs} classes"
        return (f"The output holds one softmax probability per class ({names}). pixlearn's label map is the arg-max "
                "over the channel axis.")
    if model.task == "restore":
        if model.normalization.mode == "percentile":
            return ("The output is the restored image in normalised units: 0 and 1 are the input's "
                    f"{model.normalization.pmin} and {model.normalization.pmax} percentiles. Multiply by "
                    "(p_high - p_low) and add p_low of the input (per channel) to return to its intensities.")
        return "The output is the restored image in the input's intensity units."
    from pixlearn.postprocess.instances import InstanceThresholds, stored_thresholds

    t = stored_thresholds(model.thresholds) or InstanceThresholds()
    seeds = (f"connected regions (full connectivity) of `distance > {t.seed_thresh}` inside the foreground"
             if t.seed_method == "threshold" else
             f"regional maxima of the distance at least h = {t.h} high (`skimage.morphology.h_maxima`)")
    return (
        "Channel 0 is the foreground probability, channel 1 the distance from each object pixel to the object's "
        "border divided by the object's largest distance (every object peaks at 1). Instance labels are a seeded "
        "watershed, as `pixlearn.postprocess.instances.instances_from_outputs` computes it with the thresholds "
        "stored in this model:\n\n"
        f"1. foreground mask: `foreground > {t.prob_thresh}` (face connectivity);\n"
        f"2. seeds: {seeds}; a foreground region without a seed is a seed itself;\n"
        "3. watershed of `-distance` from the seeds, restricted to the mask;\n"
        f"4. objects smaller than {t.min_size} pixels, or whose distance never exceeds {t.min_peak}, are removed; "
        "labels are made sequential.\n\n"
        "In Python: `scipy.ndimage.label` and `skimage.segmentation.watershed` reproduce these steps."
    )


def _normalisation_text(model: Any) -> str:
    norm = model.normalization
    if norm.mode == "percentile":
        return (f"per image and channel, the {norm.pmin} and {norm.pmax} percentiles map to 0 and 1, no clipping "
                "(`scale_range` over the spatial axes).")
    if norm.mode == "fixed":
        return f"{norm.low}..{norm.high} map to 0..1 for every image (`scale_linear`)."
    return "none (the input is only cast to float32)."


def readme_text(model: Any, authors: Sequence[str], training_data: str | None, license: str,
                sizes: Sequence[tuple[int, int]], halo: Sequence[int]) -> str:
    """Markdown for the package's ``README.md`` (its ``documentation``)."""
    names = ["z", "y", "x"][-model.ndim:]
    size_text = ", ".join(f"{n}: {m} + k * {s}" for n, (m, s) in zip(names, sizes))
    halo_text = ", ".join(f"{n}: {h}" for n, h in zip(names, halo))
    history = model.history or {}
    trained = (f"{history.get('epochs', '?')} epochs, final training loss {history.get('final_train_loss', '?')}"
               if history else "no training history stored")
    return f"""# pixlearn {model.ndim}D U-Net ({model.task})

Exported by pixlearn {__version__}. Authors: {", ".join(authors)}.

## What it does

Input: `(batch, channel, {", ".join(names)})`, {model.n_channels} channel(s), raw intensities.
Normalisation (in the package's preprocessing): {_normalisation_text(model)}

Sizes: {size_text} (multiples of the network's size divisor). Tiles should overlap by the halo
({halo_text} pixels per side), which is the network's receptive-field margin: cropping it from each
tile makes tiled prediction equal whole-image prediction.

## Post-processing

{_postprocessing_text(model)}

## Weights

`pytorch_state_dict` (architecture `pixlearn_unet.py`: pixlearn's U-Net and the output activation,
needs only PyTorch), `torchscript` and `onnx` (opset 17), all converted from the same weights. The
TorchScript and ONNX graphs take the sizes above only; the state-dict module pads any size itself.

## Validation

The test tensors were computed by pixlearn: `test_output.npy` is pixlearn's prediction for
`test_input.npy`. Check the package with

    bioimageio validate-format model.zip
    bioimageio test model.zip

(pixlearn's own tests run both on every export, offline). Training: {trained}.

## Training data

{training_data or "Not stated by the exporter."}

## Licence

The weights are released under {license}.
"""
