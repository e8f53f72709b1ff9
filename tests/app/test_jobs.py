"""train_classical_model: config-file sections (nested or of the flat layout) and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixlearn.app.jobs import train_classical_model
from pixlearn.classical.config import ForestConfig
from pixlearn.data.pairs import Pair


@pytest.mark.parametrize(
    "section",
    [{"rf": {"n_estimators": 9, "max_depth": 3}, "seed": 2}, {"n_estimators": 9, "max_depth": 3, "seed": 2}],
    ids=["nested", "flat"],
)
def test_options_override_the_config_file_key_by_key(blobs_2d, section):
    image, labels = blobs_2d
    pair = Pair("a", image[..., None], (labels > 0).astype(np.int64), Path("a.tif"), Path("a_labels.tif"))
    model = train_classical_model(
        [pair], label_kind="dense",
        sections={"features": {"sigmas": [1.0], "features": ["gaussian"]}, "classifier": section},
        classifier_overrides={"method": "rf", "rf": {"n_estimators": 4}},
    )
    assert model.clf_cfg.rf == ForestConfig(n_estimators=4, max_depth=3) and model.clf_cfg.seed == 2
    assert len(model.estimator.estimators_) == 4
    assert "rf" in model.to_metadata()["classifier"]
