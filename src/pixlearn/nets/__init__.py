"""Networks: everything of pixlearn that imports torch.

What the room owns, one module each: the U-Net and its tiling geometry (:mod:`~pixlearn.nets.unet`),
losses (:mod:`~pixlearn.nets.losses`), the device and the precision path of training and
inference (:mod:`~pixlearn.nets.precision`, measured by :mod:`~pixlearn.nets.precision_probe`; prediction's
measured on the network itself by :mod:`~pixlearn.nets.network_probe`, with the onnxruntime engine of
:mod:`~pixlearn.nets.onnx_engine`),
the training loop (:mod:`~pixlearn.nets.training`), its progress and learning-rate schedule and stopping rule
(:mod:`~pixlearn.nets.schedule`), the record of a run (:mod:`~pixlearn.nets.history`), training
in several processes (:mod:`~pixlearn.nets.distributed`, local processes :mod:`~pixlearn.nets.spawn`),
training patches and augmentation (:mod:`~pixlearn.nets.patches`, colour jitter :mod:`~pixlearn.nets.colour`),
training-time scale normalisation (:mod:`~pixlearn.nets.scaling`),
per-task training targets (:mod:`~pixlearn.nets.targets`), self-configuration from the data
(:mod:`~pixlearn.nets.autoconfig`), checkpoints and resumption (:mod:`~pixlearn.nets.checkpoints`), the
eval-only inference copy (:mod:`~pixlearn.nets.inference`), the trained :class:`NetworkModel`
(:mod:`~pixlearn.nets.model`) and :func:`fit_network` (:mod:`~pixlearn.nets.fit`), with what
fine-tuning a trained network keeps and changes (:mod:`~pixlearn.nets.finetune`). Image
classification by a CNN: the residual network (:mod:`~pixlearn.nets.classifier`), its training
data and augmentation (:mod:`~pixlearn.nets.classify_data`), loop and losses
(:mod:`~pixlearn.nets.classify_training`), fitting (:mod:`~pixlearn.nets.classify_fit`), the
:class:`ImageClassifierModel` (:mod:`~pixlearn.nets.classifier_model`) and its saliency maps
(:mod:`~pixlearn.nets.saliency`). The configuration dataclasses live in
:mod:`~pixlearn.nets.config` (augmentation: :mod:`~pixlearn.nets.augment_config`) and
:mod:`~pixlearn.nets.classify_config`, which do not import torch.

Imports allowed: :mod:`pixlearn.config`, :mod:`pixlearn.errors`, :mod:`pixlearn.data`,
:mod:`pixlearn.postprocess`, :mod:`pixlearn.metrics` and :mod:`pixlearn.models.protocol`; never
:mod:`pixlearn.classical`, :mod:`pixlearn.predict` or :mod:`pixlearn.app`.

The names below are imported on first use, so that ``import pixlearn.nets.config`` (and the
torch-free :mod:`~pixlearn.nets.patches`) stays free of torch.
"""

from __future__ import annotations

from pixlearn.lazy import lazy_exports

_PUBLIC: dict[str, str] = {
    "AugmentConfig": "pixlearn.nets.config",
    "ColourAugmentConfig": "pixlearn.nets.config",
    "TrainConfig": "pixlearn.nets.config",
    "UNetConfig": "pixlearn.nets.config",
    "ClassifierNetConfig": "pixlearn.nets.classify_config",
    "ClassifyAugmentConfig": "pixlearn.nets.classify_config",
    "ClassifyConfig": "pixlearn.nets.classify_config",
    "ClassifyTrainConfig": "pixlearn.nets.classify_config",
    "ResidualClassifier": "pixlearn.nets.classifier",
    "ImageClassifierModel": "pixlearn.nets.classifier_model",
    "fit_image_classifier": "pixlearn.nets.classify_fit",
    "train_classifier": "pixlearn.nets.classify_training",
    "grad_cam": "pixlearn.nets.saliency",
    "occlusion": "pixlearn.nets.saliency",
    "FitOptions": "pixlearn.nets.fit",
    "fit_network": "pixlearn.nets.fit",
    "resolve_setup": "pixlearn.nets.fit",
    "FINE_TUNE_WARMUP_STEPS": "pixlearn.nets.finetune",
    "fine_tune_schedule": "pixlearn.nets.finetune",
    "learning_rate": "pixlearn.nets.schedule",
    "auto_config": "pixlearn.nets.autoconfig",
    "LOSSES": "pixlearn.nets.losses",
    "make_loss": "pixlearn.nets.losses",
    "NetworkModel": "pixlearn.nets.model",
    "History": "pixlearn.nets.history",
    "World": "pixlearn.nets.distributed",
    "world_from_environment": "pixlearn.nets.distributed",
    "spawn_local": "pixlearn.nets.spawn",
    "PrecisionPath": "pixlearn.nets.precision",
    "choose_precision": "pixlearn.nets.precision",
    "resolve_device": "pixlearn.nets.precision",
    "resolve_precision": "pixlearn.nets.precision",
    "train": "pixlearn.nets.training",
    "UNet": "pixlearn.nets.unet",
    "anisotropic_pool_kernels": "pixlearn.nets.unet",
    "receptive_field_halo": "pixlearn.nets.unet",
    "size_divisor": "pixlearn.nets.unet",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
