"""The built-in models: listed with their cards, shipped as package data, loaded like user files."""

from __future__ import annotations

import doctest
import fnmatch
from pathlib import Path

import numpy as np
import pytest

import pixlearn
from pixlearn.errors import ModelFileError, PixlearnError
from pixlearn.models import model_file
from pixlearn.zoo import (
    CARD_FIELDS,
    builtin_model,
    builtin_models,
    describe,
    find_builtin,
    load_model,
    model_source,
    registry,
)

ROOT = Path(__file__).resolve().parents[2]


def test_doctests() -> None:
    result = doctest.testmod(registry)
    assert result.attempted > 0 and result.failed == 0


def test_the_nuclei_model_is_listed_with_its_card() -> None:
    models = {m.name: m for m in builtin_models()}
    assert "nuclei" in models
    nuclei = models["nuclei"]
    assert all(field in nuclei.card for field in CARD_FIELDS)
    assert nuclei.task == "instances" and nuclei.card["name"] == "nuclei"
    assert isinstance(nuclei.card["scores"], dict) and nuclei.size_bytes > 1000
    with pytest.raises(TypeError):  # the card is read-only
        nuclei.card["task"] = "semantic"  # type: ignore[index]


def test_the_weights_are_package_data_of_the_wheel_and_sdist() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pixlearn"]
    folder = ROOT / "src" / "pixlearn" / "zoo" / "weights"
    shipped = sorted(p.relative_to(folder.parents[1]).as_posix() for p in folder.iterdir())
    assert shipped and all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in shipped), shipped


def test_load_model_by_name_uses_the_safe_loader_of_user_files() -> None:
    pytest.importorskip("torch")
    model = pixlearn.load_model("nuclei", device="cpu")
    with model_source("nuclei") as (path, builtin):
        assert builtin is not None and builtin.name == "nuclei"
        same = model_file.load_model(path, device="cpu")
    assert (model.kind, model.task, model.n_channels) == ("network", "instances", 1)
    assert model.normalization.polarity == "bright-objects"
    assert model.to_metadata() == same.to_metadata()
    for name, tensor in model.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), same.state_dict()[name].numpy())


def test_a_path_that_exists_always_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixlearn.classical.features import FeatureConfig

    image = np.zeros((16, 16, 1), np.float32)
    image[4:12, 4:12] = 1.0
    rf = pixlearn.fit_pixel_classifier([image], [(image[..., 0] > 0.5).astype(np.int64)], FeatureConfig(sigmas=(1.0,)))
    monkeypatch.chdir(tmp_path)
    pixlearn.save_model(rf, "nuclei")  # a user's model folder called "nuclei"
    assert find_builtin("nuclei") is None
    assert load_model("nuclei").kind == "classical"
    assert "model_card" not in describe("nuclei") and describe("nuclei")["kind"] == "classical"


def test_unknown_names_and_missing_paths_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"no built-in model of that name \(built-in: nuclei"):
        load_model("nucleii")
    with pytest.raises(ModelFileError, match="no such model file or folder"):
        load_model(tmp_path / "missing.zip")
    with pytest.raises(PixlearnError, match="no built-in model 'cells'; built-in models: nuclei"):
        builtin_model("cells")
    assert find_builtin("weights/nuclei.zip") is None and find_builtin("Nuclei") is None


def test_describe_puts_the_card_beside_the_usual_description() -> None:
    description = pixlearn.describe("nuclei")
    assert description["builtin"] == "nuclei" and description["model_card"]["licence"]
    assert description["kind"] == "network" and description["model"]["task"] == "instances"
    assert set(description["files"]) >= {"model.json", "weights.safetensors"}


def test_listing_reads_nothing_but_cards() -> None:
    import subprocess
    import sys

    code = "import sys, pixlearn.zoo as z; z.builtin_models(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
