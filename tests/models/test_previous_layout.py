"""Model files written by the flat layout (before the rooms) still load and predict the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixlearn.models.model_file import load_model
from pixlearn.predict import apply_model

FIXTURES = Path(__file__).parent / "fixtures" / "v1"


@pytest.mark.parametrize(
    ("name", "reference"),
    [("rf_v1.zip", "rf_v1_probabilities.npy"), ("unet_instances_v1.zip", "unet_instances_v1_outputs.npy")],
)
def test_model_of_previous_layout_predicts_as_before(name: str, reference: str) -> None:
    image = np.load(FIXTURES / "input.npy")
    model = load_model(FIXTURES / name)
    _, outputs = apply_model(model, image, return_probabilities=True)
    # the references were computed by the pre-move code on this machine's CPU; float32 sums
    np.testing.assert_allclose(outputs, np.load(FIXTURES / reference), rtol=1e-5, atol=1e-5)
