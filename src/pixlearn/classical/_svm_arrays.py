"""The SVM pipeline as plain arrays (see :mod:`pixlearn.classical.estimator_arrays`).

``Pipeline([StandardScaler, CalibratedClassifierCV(SVC or LinearSVC, method="sigmoid",
ensemble=False)])``: the scaler's ``scale.mean/scale/var``, the Platt parameters
``calibration.a/b`` (one per class, one for two classes), and either the kernel SVM's libsvm
model ``svc.support_vectors``, ``svc.support``, ``svc.n_support``, ``svc.dual_coef``,
``svc.intercept``, ``svc.class_weight`` (libsvm's own sign convention, the private
``_dual_coef_``/``_intercept_``) or the linear SVM's ``linear.coef/intercept``. libsvm indexes
the support vectors by ``n_support`` and the coefficients by class pair without checks, so
every shape and count is checked first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixlearn.classical._array_checks import (
    MAX_FEATURES,
    check_params,
    get_array,
    get_classes,
    get_float,
    get_int,
    get_list,
    scalar_params,
)

__all__ = ["SVM_TYPES", "svm_from_arrays", "svm_to_arrays", "svm_type_name"]

SVM_TYPES: tuple[str, ...] = ("ScaledCalibratedSVC", "ScaledCalibratedLinearSVC")
_KERNELS = ("rbf", "linear", "poly", "sigmoid")


def svm_type_name(estimator: Any) -> str | None:
    """``"ScaledCalibratedSVC"`` or ``"ScaledCalibratedLinearSVC"`` for a scaler + calibrated
    SVM pipeline, ``None`` for anything else (unsupported details raise in :func:`svm_to_arrays`)."""
    if type(estimator).__name__ != "Pipeline" or len(getattr(estimator, "steps", ())) != 2:
        return None
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    scaler, calibrated = (step for _, step in estimator.steps)
    if type(estimator) is not Pipeline or type(scaler) is not StandardScaler or type(calibrated) is not CalibratedClassifierCV:
        return None
    return {SVC: "ScaledCalibratedSVC", LinearSVC: "ScaledCalibratedLinearSVC"}.get(type(calibrated.estimator))


def _params(estimator: Any, where: str, skip: str = "") -> dict[str, Any]:
    """Constructor parameters but `skip`, which must all be JSON scalars."""
    return scalar_params({k: v for k, v in estimator.get_params(deep=False).items() if k != skip}, where)


def _svc_to_arrays(svm: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if svm.kernel not in _KERNELS or svm._probA.size or svm._sparse or svm._impl != "c_svc":
        raise ValueError(f"SVC(kernel={svm.kernel!r}) with libsvm probabilities or sparse input is not supported by the array format")
    arrays: dict[str, np.ndarray] = {
        "svc.support_vectors": np.ascontiguousarray(svm.support_vectors_, dtype=np.float64),
        "svc.support": np.ascontiguousarray(svm.support_, dtype=np.int32),
        "svc.n_support": np.ascontiguousarray(svm._n_support, dtype=np.int32),
        "svc.dual_coef": np.ascontiguousarray(svm._dual_coef_, dtype=np.float64),
        "svc.intercept": np.ascontiguousarray(svm._intercept_, dtype=np.float64),
        "svc.class_weight": np.ascontiguousarray(svm.class_weight_, dtype=np.float64),
    }
    meta: dict[str, Any] = {"gamma": float(svm._gamma), "shape_fit": [int(s) for s in svm.shape_fit_], "fit_status": int(svm.fit_status_)}
    return meta, arrays


def _linear_to_arrays(svm: Any, n_rows: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays = {
        "linear.coef": np.ascontiguousarray(svm.coef_, dtype=np.float64),
        "linear.intercept": np.ascontiguousarray(np.broadcast_to(svm.intercept_, (n_rows,)), dtype=np.float64),
    }
    return {"n_iter": int(svm.n_iter_)}, arrays


def svm_to_arrays(pipeline: Any, type_name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Description and arrays of a fitted scaler + calibrated SVM pipeline."""
    (scale_name, scaler), (svm_name, calibrated) = pipeline.steps
    if scaler.mean_ is None or scaler.scale_ is None or np.ndim(scaler.n_samples_seen_) != 0:
        raise ValueError("a StandardScaler without centring or scaling is not supported by the array format")
    if calibrated.method != "sigmoid" or len(calibrated.calibrated_classifiers_) != 1:
        raise ValueError("only sigmoid calibration with ensemble=False is supported by the array format")
    inner = calibrated.calibrated_classifiers_[0]
    if any(type(c).__name__ != "_SigmoidCalibration" for c in inner.calibrators):
        raise ValueError("only sigmoid calibrators are supported by the array format")
    svm = inner.estimator
    n_classes = len(calibrated.classes_)
    if type_name == "ScaledCalibratedSVC":
        model_meta, arrays = _svc_to_arrays(svm)
    else:
        model_meta, arrays = _linear_to_arrays(svm, 1 if n_classes == 2 else n_classes)
    arrays["scale.mean"] = np.ascontiguousarray(scaler.mean_, dtype=np.float64)
    arrays["scale.scale"] = np.ascontiguousarray(scaler.scale_, dtype=np.float64)
    arrays["scale.var"] = np.ascontiguousarray(scaler.var_, dtype=np.float64)
    arrays["calibration.a"] = np.array([c.a_ for c in inner.calibrators], dtype=np.float64)
    arrays["calibration.b"] = np.array([c.b_ for c in inner.calibrators], dtype=np.float64)
    meta = {
        "step_names": [scale_name, svm_name],
        "pipeline_params": _params(pipeline, "Pipeline", "steps"),
        "scaler_params": _params(scaler, "StandardScaler"),
        "n_samples_seen": float(scaler.n_samples_seen_),
        "calibration_params": _params(calibrated, "CalibratedClassifierCV", "estimator"),
        "svm_params": _params(svm, type(svm).__name__),
        "svm": model_meta,
    }
    return meta, arrays


def _build_svc(meta: dict[str, Any], arrays: dict[str, np.ndarray], classes: np.ndarray, n_features: int) -> Any:
    """A fitted ``SVC`` from checked libsvm arrays."""
    from sklearn.svm import SVC

    n_classes = classes.size
    vectors = get_array(arrays, "svc.support_vectors", np.float64, (None, n_features))
    n_vectors = vectors.shape[0]
    support = get_array(arrays, "svc.support", np.int32, (n_vectors,))
    n_support = get_array(arrays, "svc.n_support", np.int32, (n_classes,))
    dual_coef = get_array(arrays, "svc.dual_coef", np.float64, (n_classes - 1, n_vectors))
    intercept = get_array(arrays, "svc.intercept", np.float64, (n_classes * (n_classes - 1) // 2,))
    class_weight = get_array(arrays, "svc.class_weight", np.float64, (n_classes,))
    model = meta.get("svm")
    if not isinstance(model, dict):
        raise ValueError("'svm' must be a dict")
    shape_fit = get_list(model, "shape_fit", 2)
    if len(shape_fit) != 2 or shape_fit[1] != n_features:
        raise ValueError(f"'shape_fit' must be [n_samples, {n_features}], got {shape_fit!r}")
    n_samples = get_int({"shape_fit[0]": shape_fit[0]}, "shape_fit[0]", 1, 2**31 - 1)
    if n_vectors < 1 or np.any(n_support < 0) or int(n_support.sum()) != n_vectors:
        raise ValueError(f"array svc.n_support must be non-negative and sum to the {n_vectors} support vectors")
    if np.any(support < 0) or np.any(support >= n_samples):
        raise ValueError(f"array svc.support must lie in [0, {n_samples})")
    for name, array in (("support_vectors", vectors), ("dual_coef", dual_coef), ("intercept", intercept), ("class_weight", class_weight)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"array svc.{name} must be finite")
    gamma = get_float(model, "gamma")
    params = check_params(meta.get("svm_params"), list(SVC().get_params()), "SVC")
    if params.get("kernel", "rbf") not in _KERNELS:
        raise ValueError(f"SVC kernel {params['kernel']!r} is not supported by the array format (one of {_KERNELS})")
    svm = SVC(**params)
    svm._validate_params()
    binary = n_classes == 2  # scikit-learn flips libsvm's signs for two classes
    svm.support_vectors_, svm.support_, svm._n_support = vectors.copy(), support.copy(), n_support.copy()
    svm._dual_coef_, svm._intercept_ = dual_coef.copy(), intercept.copy()
    svm.dual_coef_ = -svm._dual_coef_ if binary else svm._dual_coef_
    svm.intercept_ = -svm._intercept_ if binary else svm._intercept_.copy()
    svm._probA, svm._probB = np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64)
    svm._gamma, svm._sparse, svm.shape_fit_ = gamma, False, (n_samples, n_features)
    svm.fit_status_ = get_int(model, "fit_status", 0, 1)
    svm.class_weight_, svm.classes_, svm.n_features_in_ = class_weight.copy(), classes, n_features
    return svm


def _build_linear(meta: dict[str, Any], arrays: dict[str, np.ndarray], classes: np.ndarray, n_features: int) -> Any:
    """A fitted ``LinearSVC`` from checked coefficients."""
    from sklearn.svm import LinearSVC

    n_rows = 1 if classes.size == 2 else classes.size
    coef = get_array(arrays, "linear.coef", np.float64, (n_rows, n_features))
    intercept = get_array(arrays, "linear.intercept", np.float64, (n_rows,))
    if not np.all(np.isfinite(coef)) or not np.all(np.isfinite(intercept)):
        raise ValueError("arrays linear.coef and linear.intercept must be finite")
    params = check_params(meta.get("svm_params"), list(LinearSVC().get_params()), "LinearSVC")
    svm = LinearSVC(**params)
    svm._validate_params()
    model = meta.get("svm")
    svm.n_iter_ = get_int(model if isinstance(model, dict) else {}, "n_iter", 0, 2**31 - 1)
    svm.coef_ = coef.copy()
    svm.intercept_ = intercept.copy() if svm.fit_intercept else 0.0
    svm.classes_, svm.n_features_in_ = classes, n_features
    return svm


def _build_scaler(meta: dict[str, Any], arrays: dict[str, np.ndarray], n_features: int) -> Any:
    from sklearn.preprocessing import StandardScaler

    stats = {f: get_array(arrays, f"scale.{f}", np.float64, (n_features,)) for f in ("mean", "scale", "var")}
    if not all(np.all(np.isfinite(a)) for a in stats.values()) or np.any(stats["scale"] <= 0) or np.any(stats["var"] < 0):
        raise ValueError("arrays scale.mean/scale/var must be finite, scale positive and var non-negative")
    scaler = StandardScaler(**check_params(meta.get("scaler_params"), list(StandardScaler().get_params()), "StandardScaler"))
    scaler._validate_params()
    if not (scaler.with_mean and scaler.with_std):
        raise ValueError("a StandardScaler without centring or scaling is not supported by the array format")
    scaler.mean_, scaler.scale_, scaler.var_ = (stats[f].copy() for f in ("mean", "scale", "var"))
    scaler.n_samples_seen_ = np.float64(get_float(meta, "n_samples_seen"))
    scaler.n_features_in_ = n_features
    return scaler


def svm_from_arrays(type_name: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """A fitted scaler + calibrated SVM pipeline rebuilt from checked arrays."""
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
    from sklearn.pipeline import Pipeline

    classes = get_classes(meta)
    n_features = get_int(meta, "n_features_in", 1, MAX_FEATURES)
    names = get_list(meta, "step_names", 2)
    if len(names) != 2 or not all(isinstance(n, str) and n and "__" not in n for n in names) or names[0] == names[1]:
        raise ValueError(f"'step_names' must be two distinct step names, got {names!r}")
    prefix = "svc." if type_name == "ScaledCalibratedSVC" else "linear."
    extra = sorted(a for a in arrays if not a.startswith((prefix, "scale.", "calibration.")))
    if extra:
        raise ValueError(f"unexpected arrays for a {type_name}: {extra[:5]}")
    n_calibrators = 1 if classes.size == 2 else classes.size
    a = get_array(arrays, "calibration.a", np.float64, (n_calibrators,))
    b = get_array(arrays, "calibration.b", np.float64, (n_calibrators,))
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        raise ValueError("arrays calibration.a and calibration.b must be finite")
    scaler = _build_scaler(meta, arrays, n_features)
    build = _build_svc if type_name == "ScaledCalibratedSVC" else _build_linear
    svm = build(meta, arrays, classes, n_features)
    calibration_params = check_params(
        meta.get("calibration_params"), [k for k in CalibratedClassifierCV().get_params() if k != "estimator"], "CalibratedClassifierCV"
    )
    if calibration_params.get("method") != "sigmoid":
        raise ValueError("only sigmoid calibration is supported by the array format")
    calibrated = CalibratedClassifierCV(type(svm)(**svm.get_params()), **calibration_params)
    calibrated._validate_params()
    calibrators = []
    for a_k, b_k in zip(a, b):
        calibrator = _SigmoidCalibration()
        calibrator.a_, calibrator.b_ = np.float64(a_k), np.float64(b_k)
        calibrators.append(calibrator)
    calibrated.calibrated_classifiers_ = [_CalibratedClassifier(svm, calibrators, classes=classes, method="sigmoid")]
    calibrated.classes_, calibrated.n_features_in_ = classes, n_features
    pipeline_params = check_params(meta.get("pipeline_params"), [k for k in Pipeline([("a", None)]).get_params(deep=False) if k != "steps"], "Pipeline")
    pipeline = Pipeline([(names[0], scaler), (names[1], calibrated)], **pipeline_params)
    pipeline._validate_params()
    return pipeline
