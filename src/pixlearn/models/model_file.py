"""Model files: one folder (or one ``.zip`` file) holding everything applying a model needs.

Layout::

    MODEL/ model.json           format, schema_version, kind, library versions, the model's
                                metadata (task, axes, channels, normalisation, classes, configs,
                                training history) and, when given, the resolved experiment
                                configuration ("experiment"; older files have none)
           classifier.safetensors  classical models and object classifiers: the scikit-learn estimator as plain arrays
                                (described by "estimator" in model.json; schema 1 files hold
                                classifier.skops instead, still read)
           weights.safetensors  networks and image classifiers: tensors only
           thresholds.json      post-processing parameters tuned on validation data (if any)

Loading never executes code from the file: JSON is parsed with :mod:`json`, tensors and arrays
with safetensors, and every array, tree and network shape is checked before it is used
(:mod:`pixlearn.models.validate`, :mod:`pixlearn.classical.estimator_arrays`, and for image
classifiers :mod:`pixlearn.models.classifier_file`, for object classifiers
:mod:`pixlearn.models.object_file`); schema 1
estimators go through :mod:`pixlearn.models.skops_legacy`. Anything else is refused with
:class:`~pixlearn.errors.ModelFileError`. A path ending in ``.zip`` is written as one zip file
with the same members; both forms load the same way. Loading a classical model never imports
torch.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import logging
import os
import re
import shutil
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

from pixlearn import __version__
from pixlearn.config import Config
from pixlearn.data.atomic import atomic_path
from pixlearn.errors import ModelFileError
from pixlearn.models.archive import read_members
from pixlearn.models.protocol import PixelModel, SavableModel
from pixlearn.models.skops_legacy import CLASSIFIER_SKOPS, load_skops_estimator
from pixlearn.models.validate import check_json_depth, validate_classical_meta, validate_estimator
from pixlearn.models.validate_network import validate_state_shapes, validate_unet_config

logger = logging.getLogger(__name__)

FORMAT = "pixlearn-model"
#: 2: classical estimators as plain arrays (``classifier.safetensors``); 1: as skops.
SCHEMA_VERSION = 2
MODEL_JSON = "model.json"
CLASSIFIER = "classifier.safetensors"
WEIGHTS = "weights.safetensors"
THRESHOLDS = "thresholds.json"
MEMBERS = (MODEL_JSON, CLASSIFIER, CLASSIFIER_SKOPS, WEIGHTS, THRESHOLDS)
#: Model kinds: pixel classifiers (``classical``), U-Nets (``network``), whole-image CNN classifiers,
#: classifiers of segmented objects by their measurements (``object-classifier``).
KINDS = ("classical", "network", "image-classifier", "object-classifier")



def _versions() -> dict[str, str]:
    found = {"pixlearn": __version__}
    for dist in ("numpy", "scipy", "scikit-image", "scikit-learn", "torch", "skops", "safetensors"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def check_model_target(path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse to write a model at `path` unless that loses nothing of the user's.

    Nothing there, or an empty folder, is fine. An existing pixlearn model (a folder holding
    model members only, or a zip file, with a ``model.json`` whose format is ``pixlearn-model``)
    may be replaced only with `overwrite`. Anything else is refused.

    Parameters
    ----------
    path : path-like
        Model folder or ``.zip`` file to be written.
    overwrite : bool
        Whether an existing pixlearn model may be replaced.

    Raises
    ------
    ModelFileError
        Naming `path` and why it would not be replaced.
    """
    path = Path(path)
    if not os.path.lexists(path):
        if path.parent.exists() and not path.parent.is_dir():
            raise ModelFileError(f"{path.parent} is a file, not a folder", path)
        return
    if path.is_symlink() or not (path.is_dir() or path.is_file()):
        raise ModelFileError("exists and is not a pixlearn model; not replaced", path)
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir())
        if not entries:
            return
        foreign = [name for name in entries if name not in MEMBERS]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ModelFileError(f"folder holds files that are not part of a pixlearn model ({shown}); "
                                 "not replaced: choose another output", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_header(path)
    except ModelFileError:
        raise ModelFileError("exists and is not a pixlearn model; not replaced: choose another output",
                             path) from None
    if not overwrite:
        raise ModelFileError("a pixlearn model is already there; pass --overwrite to replace it", path)


def save_model(model: SavableModel, path: str | os.PathLike[str], *, experiment: Config | None = None,
               overwrite: bool = True) -> Path:
    """Write a trained model to a folder, or to one zip file when `path` ends in ``.zip``.

    The target appears only when complete (written under a temporary name, then renamed).
    An existing target is replaced only if it is a pixlearn model or an empty folder, and only
    with `overwrite`; anything else (a user's file or folder) is refused, see
    :func:`check_model_target`.

    Parameters
    ----------
    model : SavableModel
        A :class:`~pixlearn.classical.model.PixelClassifier`, :class:`~pixlearn.nets.model.NetworkModel`,
        :class:`~pixlearn.nets.classifier_model.ImageClassifierModel` or
        :class:`~pixlearn.classical.object_model.ObjectClassifier`.
    path : path-like
    experiment : Config, optional
        The resolved :class:`pixlearn.experiment.ExperimentConfig` the model was trained with,
        written as ``"experiment"`` in ``model.json`` (read it back with
        :meth:`~pixlearn.experiment.ExperimentConfig.from_model`).
    overwrite : bool
        Replace an existing pixlearn model at `path` (default, as the Python API always did;
        the command line asks for ``--overwrite``).

    Returns
    -------
    path : Path

    Raises
    ------
    ModelFileError
        When `path` holds something that is not a pixlearn model or an empty folder, or a
        model and not `overwrite`.
    """
    path = Path(path)
    check_model_target(path, overwrite=overwrite)
    members = _serialise(model, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    zf.writestr(name, data)
        else:
            tmp.mkdir()
            for name, data in members.items():
                (tmp / name).write_bytes(data)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):  # of a run killed while saving
        if re.fullmatch(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}(\.replaced)?\.partial", stale.name):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    logger.info("saved %s model to %s", model.kind, path)
    return path


def _serialise(model: SavableModel, experiment: Config | None = None) -> dict[str, bytes]:
    meta = model.to_metadata()
    members: dict[str, bytes] = {}
    header: dict[str, Any] = {}
    if model.kind in ("classical", "object-classifier"):
        from pixlearn.classical.estimator_arrays import save_estimator_bytes

        header["estimator"], members[CLASSIFIER] = save_estimator_bytes(model.estimator)  # type: ignore[attr-defined]
    elif model.kind in ("network", "image-classifier"):
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
        members[WEIGHTS] = save(state)
    else:
        raise ValueError(f"cannot save a model of kind {model.kind!r}")
    thresholds = meta.get("thresholds")
    if thresholds:
        members[THRESHOLDS] = json.dumps(thresholds, indent=2).encode()
    header = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "kind": model.kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "model": meta,
        **header,
    }
    if experiment is not None:
        header["experiment"] = experiment.to_dict()
    members[MODEL_JSON] = json.dumps(header, indent=2).encode()
    return members






def _parse_json(data: bytes, name: str, path: Path) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise ModelFileError(f"{name} nests too deeply", path) from None
    except ValueError as exc:
        raise ModelFileError(f"{name} is not valid JSON ({exc})", path) from None
    check_json_depth(value, name, path)
    return value


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model's ``model.json`` without loading its weights.

    Raises
    ------
    ModelFileError
        Missing or malformed ``model.json``, another format, or a newer schema.
    """
    path = Path(path)
    return _check_header(read_members(path, MEMBERS), path)


def _check_header(members: dict[str, bytes], path: Path) -> dict[str, Any]:
    if MODEL_JSON not in members:
        raise ModelFileError(f"no {MODEL_JSON}: not a pixlearn model", path)
    header = _parse_json(members[MODEL_JSON], MODEL_JSON, path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{MODEL_JSON} does not describe a {FORMAT}", path)
    version = header.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ModelFileError(
            f"schema_version {version!r} is not supported (this pixlearn reads 1..{SCHEMA_VERSION})",
            path,
        )
    if header.get("kind") not in KINDS or not isinstance(header.get("model"), dict):
        raise ModelFileError(f"unknown model kind {header.get('kind')!r}", path)
    versions = header.get("versions", {})
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise ModelFileError(f"{MODEL_JSON}: versions must map package names to version strings", path)
    saved = versions.get("pixlearn")
    if saved and saved != __version__:
        warnings.warn(f"{path}: saved by pixlearn {saved}, loading with {__version__}", stacklevel=3)
    return header


def load_model(path: str | os.PathLike[str], *, device: Any = None) -> PixelModel:
    """Load a model saved by :func:`save_model`, without executing anything from the file.

    Parameters
    ----------
    path : path-like
        Model folder or ``.zip`` file.
    device : str or torch.device, optional
        Where a network's weights go; default CUDA when available, else CPU.

    Returns
    -------
    model : PixelModel
        Or, for a file of kind ``"image-classifier"``, an
        :class:`~pixlearn.nets.classifier_model.ImageClassifierModel` (one class per image, not a
        :class:`PixelModel`: check ``model.kind`` before tiling); for ``"object-classifier"`` an
        :class:`~pixlearn.classical.object_model.ObjectClassifier` (one class per object).

    Raises
    ------
    ModelFileError
        Malformed files, an unsupported schema, missing members, or untrusted content.
    """
    path = Path(path)
    members = read_members(path, MEMBERS)
    header = _check_header(members, path)
    meta = dict(header["model"])
    if THRESHOLDS in members:
        meta["thresholds"] = _parse_json(members[THRESHOLDS], THRESHOLDS, path)
        if not isinstance(meta["thresholds"], dict):
            raise ModelFileError(f"{THRESHOLDS} must hold a JSON object", path)
    try:
        if header["kind"] == "classical":
            return _load_classical(header, meta, members, path)
        if header["kind"] == "image-classifier":
            from pixlearn.models.classifier_file import load_image_classifier

            return load_image_classifier(meta, members.get(WEIGHTS), path, device)
        if header["kind"] == "object-classifier":
            from pixlearn.models.object_file import load_object_classifier

            return load_object_classifier(header, meta, members.get(CLASSIFIER), path)
        return _load_network(meta, members, path, device)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"model description is inconsistent ({type(exc).__name__}: {exc})", path) from exc


def _load_classical(header: dict[str, Any], meta: dict[str, Any], members: dict[str, bytes], path: Path) -> PixelModel:
    from pixlearn.classical.model import PixelClassifier

    validate_classical_meta(meta, path)
    if CLASSIFIER in members:
        from pixlearn.classical.estimator_arrays import load_estimator_bytes

        if not isinstance(header.get("estimator"), dict):
            raise ModelFileError(f"{MODEL_JSON}: a classical model needs its estimator description", path)
        try:
            estimator = load_estimator_bytes(header["estimator"], members[CLASSIFIER])
        except ValueError as exc:
            raise ModelFileError(f"{CLASSIFIER}: {exc}", path) from None
    elif CLASSIFIER_SKOPS in members and header["schema_version"] == 1:
        estimator = load_skops_estimator(members[CLASSIFIER_SKOPS], path)
    else:
        raise ModelFileError(f"classical model without {CLASSIFIER}", path)
    # checked whatever its source: the classes and features the model's metadata promises
    validate_estimator(estimator, n_outputs=len(meta["class_names"]), path=path)
    return PixelClassifier.from_metadata(meta, estimator)


def _load_network(meta: dict[str, Any], members: dict[str, bytes], path: Path, device: Any) -> PixelModel:
    from safetensors.torch import load

    from pixlearn.nets.model import NetworkModel
    from pixlearn.nets.unet import UNetConfig

    if WEIGHTS not in members:
        raise ModelFileError(f"network model without {WEIGHTS}", path)
    if not isinstance(meta.get("unet"), dict):
        raise ModelFileError(f"{MODEL_JSON}: a network model needs its unet settings", path)
    unet = UNetConfig.from_dict(meta["unet"])
    validate_unet_config(unet, path)  # before anything of that size is allocated
    try:
        state = load(members[WEIGHTS])
    except Exception as exc:
        raise ModelFileError(f"{WEIGHTS} is corrupt ({type(exc).__name__}: {exc})", path) from None
    validate_state_shapes(unet, state, path)
    model = NetworkModel.from_metadata(meta, state)
    if device is not None:
        model = model.to(device)
    return model


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a model plus its member sizes, for ``pixlearn info``."""
    path = Path(path)
    members = read_members(path, MEMBERS)
    header = _check_header(members, path)
    header["files"] = {name: len(data) for name, data in members.items()}
    return header

