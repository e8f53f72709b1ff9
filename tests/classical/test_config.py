"""The nested classifier configuration: validation, round trips, and the flat keys of before."""

from __future__ import annotations

import doctest
import json
import zipfile
from pathlib import Path

import pytest

import pixlearn.classical.config
import pixlearn.classical.estimators
from pixlearn.classical.config import (
    LEGACY_KEYS,
    BoostingConfig,
    ClassifierConfig,
    ForestConfig,
    SVMConfig,
)
from pixlearn.classical.estimators import make_estimator, n_threads

V1_MODEL = Path(__file__).parents[1] / "models" / "fixtures" / "v1" / "rf_v1.zip"


def test_doctests() -> None:
    for module in (pixlearn.classical.config, pixlearn.classical.estimators):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ForestConfig(max_depth=0), "rf.max_depth"),
        (lambda: ForestConfig(min_samples_leaf=0), "rf.min_samples_leaf"),
        (lambda: SVMConfig(c=0.0), "svm.c"),
        (lambda: SVMConfig(max_samples=1), "svm.max_samples"),
        (lambda: BoostingConfig(max_iter=0), "hgb.max_iter"),
        (lambda: BoostingConfig(learning_rate=0.0), "hgb.learning_rate"),
        (lambda: BoostingConfig(max_leaf_nodes=1), "hgb.max_leaf_nodes"),
        (lambda: ClassifierConfig(rf={"n_estimators": 3}), "ForestConfig"),
        (lambda: ClassifierConfig(max_samples_per_class=0), "max_samples_per_class"),
    ],
)
def test_sections_are_validated_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_nested_round_trip_through_dict_json_and_yaml(tmp_path):
    cfg = ClassifierConfig(
        method="svm",
        rf=ForestConfig(n_estimators=7, max_depth=3, max_features="all"),
        svm=SVMConfig(kernel="linear", c=0.5, max_samples=100),
        hgb=BoostingConfig(max_iter=5, learning_rate=0.2, max_leaf_nodes=8),
        class_weight=None,
        max_samples_per_class=None,
        n_jobs=2,
        seed=4,
    )
    data = cfg.to_dict()
    assert data["svm"] == {"kernel": "linear", "c": 0.5, "max_samples": 100}
    assert not set(data) & set(LEGACY_KEYS)
    assert ClassifierConfig.from_dict(data) == cfg
    assert ClassifierConfig.from_dict(json.loads(json.dumps(data))) == cfg
    for name in ("clf.json", "clf.yaml"):
        cfg.save(tmp_path / name)
        assert ClassifierConfig.load(tmp_path / name) == cfg
    assert ClassifierConfig.from_dict({}) == ClassifierConfig()


@pytest.mark.parametrize(
    "data, match",
    [
        ({"trees": 5}, "unknown keys"),
        ({"rf": {"trees": 5}}, "ForestConfig: unknown keys"),
        ({"svm": {"svm_kernel": "linear"}}, "SVMConfig: unknown keys"),
        ({"hgb": 3}, "hgb"),
        ({"n_estimators": 5, "rf": {"n_estimators": 6}}, "both flat and in section 'rf'"),
        ({"svm_kernel": "poly"}, "svm.kernel"),
        ({"n_estimators": 0}, "n_estimators"),
    ],
)
def test_unknown_keys_conflicts_and_bad_values_refused(data, match):
    with pytest.raises(ValueError, match=match):
        ClassifierConfig.from_dict(data)


def test_legacy_flat_keys_go_into_their_sections():
    flat = {
        "method": "svm", "n_estimators": 7, "max_depth": 4, "min_samples_leaf": 2, "max_features": "log2",
        "svm_kernel": "linear", "svm_c": 2, "svm_max_samples": 300,
        "hgb_max_iter": 9, "hgb_learning_rate": 0.3, "hgb_max_leaf_nodes": 15,
        "class_weight": None, "seed": 3,
    }
    assert set(LEGACY_KEYS) <= set(flat)
    cfg = ClassifierConfig.from_dict(flat)
    assert cfg == ClassifierConfig(
        method="svm",
        rf=ForestConfig(n_estimators=7, max_depth=4, min_samples_leaf=2, max_features="log2"),
        svm=SVMConfig(kernel="linear", c=2.0, max_samples=300),
        hgb=BoostingConfig(max_iter=9, learning_rate=0.3, max_leaf_nodes=15),
        class_weight=None,
        seed=3,
    )
    assert isinstance(cfg.svm.c, float)
    # a flat key and other keys of its section merge
    mixed = ClassifierConfig.from_dict({"n_estimators": 5, "rf": {"max_depth": 3}})
    assert mixed.rf == ForestConfig(n_estimators=5, max_depth=3)


def test_classifier_section_of_a_v1_model_file_reads():
    with zipfile.ZipFile(V1_MODEL) as archive:
        section = json.loads(archive.read("model.json"))["model"]["classifier"]
    assert "svm_kernel" in section and "rf" not in section  # the flat layout
    cfg = ClassifierConfig.from_dict(section)
    assert cfg.method == "rf" and cfg.rf == ForestConfig(n_estimators=3, max_depth=4)
    assert cfg.svm == SVMConfig() and cfg.hgb == BoostingConfig()


def test_with_overrides_merges_sections():
    base = ClassifierConfig.from_dict({"rf": {"max_depth": 6}, "seed": 1})
    cfg = base.with_overrides({"method": "rf", "rf": {"n_estimators": 9}, "seed": 2})
    assert cfg.rf == ForestConfig(n_estimators=9, max_depth=6) and cfg.seed == 2
    assert base.with_overrides({}) == base
    assert base.with_overrides({"n_estimators": 4}).rf == ForestConfig(n_estimators=4, max_depth=6)
    with pytest.raises(ValueError, match="unknown keys"):
        base.with_overrides({"rf": {"depth": 3}})


def test_estimators_follow_their_sections():
    rf = make_estimator(ClassifierConfig(rf=ForestConfig(n_estimators=4, max_features="all"), n_jobs=1, seed=5))
    assert (rf.n_estimators, rf.max_features, rf.random_state) == (4, None, 5)
    hgb = make_estimator(ClassifierConfig(method="hgb", hgb=BoostingConfig(max_iter=3, max_leaf_nodes=5)))
    assert (hgb.max_iter, hgb.max_leaf_nodes) == (3, 5)
    svm = make_estimator(ClassifierConfig(method="svm", svm=SVMConfig(kernel="linear", c=0.25)))
    assert svm.named_steps["svm"].estimator.C == 0.25
    assert n_threads(2) == 2 and n_threads(-1) >= 1
