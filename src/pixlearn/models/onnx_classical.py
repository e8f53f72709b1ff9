"""Classical pixel classifiers as ONNX: the fitted random forest on feature stacks (:func:`export_onnx_classical`).

Only the estimator is exported. The filter bank (:mod:`pixlearn.classical.features`) is not in the
ONNX graph: a consumer must compute pixlearn's feature stack itself (same
:class:`~pixlearn.classical.features.FeatureConfig`, same normalisation) and pass it as
``(n_pixels, n_features)`` float32. On such stacks the graph's probabilities reproduce pixlearn's
within 1e-5 (measured by ``tests/models/test_onnx_classical.py``: the trees compare float32
features with float32 thresholds in both, and only the summation of the leaf fractions differs).
Needs ``skl2onnx`` and ``onnx`` (the ``exchange`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.errors import PixlearnError

#: ONNX opset of the exported graphs (ai.onnx.ml's TreeEnsembleClassifier).
ONNX_OPSET = 17


def export_onnx_classical(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a classical model's random forest as ONNX (input ``features``, outputs label and probabilities).

    Parameters
    ----------
    model : PixelClassifier
        Fitted with ``method="rf"``.
    path : path-like
        The ``.onnx`` file (written atomically).

    Returns
    -------
    path : Path

    Raises
    ------
    PixlearnError
        Not a classical model, or another estimator than a random forest.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier

    if getattr(model, "kind", None) != "classical":
        raise PixlearnError("export_onnx_classical takes classical models (networks: export_bioimageio)")
    estimator = model.estimator
    if not isinstance(estimator, RandomForestClassifier):
        raise PixlearnError(f"ONNX export covers random forests only, this model holds {type(estimator).__name__}")
    onnx_model = to_onnx(estimator, initial_types=[("features", FloatTensorType([None, model.n_features]))],
                         target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
                         options={id(estimator): {"zipmap": False}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(onnx_model.SerializeToString())
    return path


def onnx_probabilities(path: str | os.PathLike[str], features: np.ndarray) -> np.ndarray:
    """Run an exported forest on a feature table ``(n_pixels, n_features)``: probabilities ``(n_pixels, K)``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"features": np.ascontiguousarray(features, np.float32)})
    return np.asarray(outputs[1], np.float32)
