"""train_classical_model: an experiment's sections (nested or of the flat layout) and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixlearn.app.jobs import train_classical_model
from pixlearn.classical.config import ForestConfig
from pixlearn.data.pairs import Pair
from pixlearn.experiment import ExperimentConfig


@pytest.mark.parametrize(
    "section",
    [{"rf": {"n_estimators": 9, "max_depth": 3}, "seed": 2}, {"n_estimators": 9, "max_depth": 3, "seed": 2}],
    ids=["nested", "flat"],
)
def test_options_override_the_config_file_key_by_key(blobs_2d, section):
    image, labels = blobs_2d
    pair = Pair("a", image[..., None], (labels > 0).astype(np.int64), Path("a.tif"), Path("a_labels.tif"))
    experiment = ExperimentConfig.from_dict({"features": {"sigmas": [1.0], "features": ["gaussian"]}, "classifier": section})
    experiment = experiment.replace(classifier=experiment.classifier.with_overrides({"method": "rf", "rf": {"n_estimators": 4}}))
    model = train_classical_model([pair], label_kind="dense", experiment=experiment)
    assert model.clf_cfg.rf == ForestConfig(n_estimators=4, max_depth=3) and model.clf_cfg.seed == 2
    assert len(model.estimator.estimators_) == 4
    assert "rf" in model.to_metadata()["classifier"]
