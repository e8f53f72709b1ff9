"""Accuracy on the real data sets in ../shared/data (slow: run with --runslow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixlearn.data.folders import read_split
from pixlearn.data.labels import to_class_targets
from pixlearn.data.pairs import load_pairs, to_grey
from pixlearn.metrics import confusion_matrix, matching_dataset, scores_from_confusion
from pixlearn.predict import apply_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.exists(), reason="shared data not present"),
]


def _split_pairs(name, kind, n_train, n_test):
    root = DATA / name
    split = read_split(root)
    train = load_pairs(root / "images", root / "labels", label_kind=kind, names=split["train"][:n_train])
    test = load_pairs(root / "images", root / "labels", label_kind=kind, names=split["test"][:n_test])
    return train, test


def test_random_forest_on_isbi2012_membranes():
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier

    train, test = _split_pairs("isbi2012_em", "dense", 5, 2)
    targets = [to_class_targets(p.labels, "dense", n_classes=2) for p in train]
    model = fit_pixel_classifier([p.image for p in train], targets, FeatureConfig(),
                                 ClassifierConfig(rf=ForestConfig(n_estimators=50), max_samples_per_class=20_000, seed=0))
    matrix = sum(confusion_matrix(p.labels, np.asarray(apply_model(model, p.image)), 2) for p in test)
    scores = scores_from_confusion(matrix)
    # the random forest of the pixel-classifier benchmark scores about 0.58 IoU on all 5 test slices
    assert scores.iou[1] > 0.5
    assert scores.pixel_accuracy > 0.85


def test_unet_instances_on_dsb2018_subset():
    from pixlearn.nets.fit import fit_network
    from pixlearn.nets.training import TrainConfig

    train, test = _split_pairs("dsb2018_nuclei", "instances", 80, 20)
    cfg = TrainConfig(epochs=1000, steps_per_epoch=20, batch_size=8, patch_shape=(128, 128), time_limit_s=240,
                      patience=0, seed=0)
    model = fit_network([p.image for p in train], [p.labels for p in train], "instances", train_config=cfg)
    predictions = [np.asarray(apply_model(model, to_grey(p.image))) for p in test]
    ap50 = matching_dataset([p.labels for p in test], predictions, thresholds=(0.5,))[0].accuracy
    assert ap50 > 0.5  # four minutes of CPU training on 80 images; the 30-minute benchmark goes further
