"""Classical models of schema 1: the estimator stored with skops (``classifier.skops``).

pixlearn now stores estimators as plain arrays (:mod:`pixlearn.classical.estimator_arrays`);
this module only reads the older files. skops rebuilds the estimator from an allow-list of types
(:data:`TRUSTED_TYPES`, nothing that can run code); what it rebuilds is then checked by
:func:`pixlearn.models.validate.validate_estimator` before any use, because scikit-learn's
compiled code reads tree and SVM arrays without bounds checks. Importing skops imports every
scikit-learn module (and so torch, where it is installed): it happens only for these files.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from pixlearn.errors import ModelFileError
from pixlearn.models.archive import check_zip_entries, memory_budget

CLASSIFIER_SKOPS = "classifier.skops"

#: Types a classical model file may contain besides skops' own defaults (builtins, NumPy
#: arrays and dtypes). Everything a fitted random forest, SVM or gradient-boosting classifier
#: of scikit-learn is made of, and nothing that can run arbitrary code.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn.svm._classes.SVC",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.pipeline.Pipeline",
        "sklearn.kernel_approximation.Nystroem",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.Interval",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn.utils._bunch.Bunch",
        "collections.OrderedDict",
        "numpy.random._mt19937.MT19937",
        "numpy.random.mtrand.RandomState",
        "builtins.slice",
        "numpy.float64",
        "numpy.int64",
        "numpy.dtype",
        "numpy.ndarray",
    }
)


def load_skops_estimator(data: bytes, path: Path) -> Any:
    """Rebuild the estimator of a ``classifier.skops`` member, trusted types only.

    Parameters
    ----------
    data : bytes
        The member's content (itself a zip file).
    path : Path
        The model file, named in errors.

    Returns
    -------
    estimator : object
        Not yet validated: pass it to :func:`pixlearn.models.validate.validate_estimator`.

    Raises
    ------
    ModelFileError
        A corrupt member, zip tricks inside it, or types outside :data:`TRUSTED_TYPES`.
    """
    import skops.io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            check_zip_entries(inner.infolist(), None, CLASSIFIER_SKOPS, path, memory_budget())
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{CLASSIFIER_SKOPS} is corrupt ({exc})", path) from None
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises many kinds on malformed input
        raise ModelFileError(f"{CLASSIFIER_SKOPS} is corrupt ({type(exc).__name__}: {exc})", path) from None
    refused = sorted(untrusted - TRUSTED_TYPES)
    if refused:
        raise ModelFileError(f"{CLASSIFIER_SKOPS} holds types that are not trusted: {refused}", path)
    try:
        return skops.io.loads(data, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelFileError(f"{CLASSIFIER_SKOPS} cannot be loaded ({type(exc).__name__}: {exc})", path) from None
