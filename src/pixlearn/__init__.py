"""pixlearn: learn pixel-wise mappings from paired microscopy images.

Classical pixel classifiers (filter bank + random forest, SVM, gradient boosting) and fully
convolutional networks (U-Net, 2D and 3D) for semantic segmentation, instance segmentation and
restoration, saved as one portable model and applied to images of any size; classifiers of whole
images (a CNN) and of segmented objects (their measurements and a random forest).

The public API is importable from here; each name is imported on first use, so
``import pixlearn`` is cheap and never imports torch (only the network names do).

Examples
--------
>>> import numpy as np
>>> import pixlearn
>>> image = np.zeros((32, 32, 1), np.float32); image[8:24, 8:24] = 1.0
>>> scribbles = np.full((32, 32), -1); scribbles[0:4] = 0; scribbles[14:18, 14:18] = 1
>>> model = pixlearn.fit_pixel_classifier([image], [scribbles])
>>> labels = pixlearn.apply_model(model, image)
>>> int(labels[16, 16]), int(labels[2, 2])
(1, 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixlearn.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (the room that owns it)
_API: dict[str, str] = {
    # data: image files, folders, pairs, normalisation
    "read_image": "pixlearn.data.images",
    "read_canonical": "pixlearn.data.images",
    "read_labels": "pixlearn.data.images",
    "write_image": "pixlearn.data.writers",
    "load_pairs": "pixlearn.data.pairs",
    "NormalizeConfig": "pixlearn.data.normalize",
    # classical pixel classifiers
    "FeatureConfig": "pixlearn.classical.features",
    "ClassifierConfig": "pixlearn.classical.config",
    "PixelClassifier": "pixlearn.classical.model",
    "fit_pixel_classifier": "pixlearn.classical.fit",
    # objects of instance label images: measurements, a classifier of them, and the file-level jobs
    "ObjectFeatureConfig": "pixlearn.classical.objects",
    "object_features": "pixlearn.classical.objects",
    "ObjectClassifier": "pixlearn.classical.object_model",
    "ObjectPredictions": "pixlearn.classical.object_model",
    "fit_object_classifier": "pixlearn.classical.object_model",
    "objects_at_points": "pixlearn.classical.object_model",
    "train_object_classifier": "pixlearn.app.classify_objects",
    "classify_object_files": "pixlearn.app.classify_objects",
    # networks (these import torch)
    "UNetConfig": "pixlearn.nets.unet",
    "TrainConfig": "pixlearn.nets.training",
    "NetworkModel": "pixlearn.nets.model",
    "fit_network": "pixlearn.nets.fit",
    "FitOptions": "pixlearn.nets.fit",
    "ClassifyConfig": "pixlearn.nets.classify_config",
    "ImageClassifierModel": "pixlearn.nets.classifier_model",
    "fit_image_classifier": "pixlearn.nets.classify_fit",
    # model files, and the built-in models (a name such as "nuclei" where no such file exists)
    "save_model": "pixlearn.models.model_file",
    "load_model": "pixlearn.zoo",
    "describe": "pixlearn.zoo",
    "builtin_models": "pixlearn.zoo",
    # application
    "TileConfig": "pixlearn.predict.tiling",
    "apply_model": "pixlearn.predict",
    "predict_many": "pixlearn.predict",
    "PredictOptions": "pixlearn.predict",
    "predict_tiled": "pixlearn.predict",
    # post-processing and evaluation
    "InstanceThresholds": "pixlearn.postprocess.instances",
    "instances_from_outputs": "pixlearn.postprocess.instances",
    "evaluate_folders": "pixlearn.metrics",
    "matching": "pixlearn.metrics",
    "semantic_scores": "pixlearn.metrics",
    # synthetic data
    "SyntheticConfig": "pixlearn.synthetic",
    "make_nuclei": "pixlearn.synthetic",
}

__all__ = [
    "__version__",
    "ClassifierConfig",
    "ClassifyConfig",
    "FitOptions",
    "FeatureConfig",
    "ImageClassifierModel",
    "InstanceThresholds",
    "NetworkModel",
    "NormalizeConfig",
    "ObjectClassifier",
    "ObjectFeatureConfig",
    "ObjectPredictions",
    "PredictOptions",
    "PixelClassifier",
    "SyntheticConfig",
    "TileConfig",
    "TrainConfig",
    "UNetConfig",
    "apply_model",
    "builtin_models",
    "classify_object_files",
    "describe",
    "evaluate_folders",
    "fit_image_classifier",
    "fit_network",
    "fit_object_classifier",
    "fit_pixel_classifier",
    "instances_from_outputs",
    "load_model",
    "load_pairs",
    "make_nuclei",
    "matching",
    "object_features",
    "objects_at_points",
    "predict_many",
    "predict_tiled",
    "read_canonical",
    "read_image",
    "read_labels",
    "save_model",
    "semantic_scores",
    "train_object_classifier",
    "write_image",
]

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from pixlearn.app.classify_objects import classify_object_files, train_object_classifier
    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.classical.model import PixelClassifier
    from pixlearn.classical.object_model import (
        ObjectClassifier,
        ObjectPredictions,
        fit_object_classifier,
        objects_at_points,
    )
    from pixlearn.classical.objects import ObjectFeatureConfig, object_features
    from pixlearn.data.images import read_canonical, read_image, read_labels
    from pixlearn.data.normalize import NormalizeConfig
    from pixlearn.data.pairs import load_pairs
    from pixlearn.data.writers import write_image
    from pixlearn.metrics import evaluate_folders, matching, semantic_scores
    from pixlearn.models.model_file import save_model
    from pixlearn.nets.classifier_model import ImageClassifierModel
    from pixlearn.nets.classify_config import ClassifyConfig
    from pixlearn.nets.classify_fit import fit_image_classifier
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.model import NetworkModel
    from pixlearn.nets.training import TrainConfig
    from pixlearn.nets.unet import UNetConfig
    from pixlearn.postprocess.instances import InstanceThresholds, instances_from_outputs
    from pixlearn.predict import PredictOptions, apply_model, predict_many, predict_tiled
    from pixlearn.predict.tiling import TileConfig
    from pixlearn.synthetic import SyntheticConfig, make_nuclei
    from pixlearn.zoo import builtin_models, describe, load_model


__getattr__, __dir__ = lazy_exports(__name__, _API)
