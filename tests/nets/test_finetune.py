"""Fine-tuning: fit_network(init=...) starts from the model's weights, keeps what it must, refuses conflicts."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.nets import finetune, schedule
from pixlearn.nets.fit import FitOptions, fit_network
from pixlearn.nets.training import TrainConfig
from pixlearn.nets.unet import UNetConfig
from pixlearn.postprocess.instances import InstanceThresholds
from pixlearn.postprocess.tuning import DEFAULT_TUNING_GRID, tune_instance_thresholds
from pixlearn.synthetic import SyntheticConfig, make_nuclei
from pixlearn.zoo import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = FitOptions(device="cpu")
# one short epoch on 64 x 64 patches: a few seconds on one thread
SHORT = TrainConfig(epochs=1, steps_per_epoch=3, batch_size=2, patch_shape=(64, 64), val_patches=4, seed=0)


@pytest.fixture(scope="module")
def nuclei_pairs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three synthetic 96 x 96 nuclei images (canonical) with their instance labels."""
    rng = np.random.default_rng(3)
    pairs = [make_nuclei(SyntheticConfig(shape=(96, 96)), rng) for _ in range(3)]
    return [im[..., None] for im, _ in pairs], [lab for _, lab in pairs]


@pytest.fixture
def builtin():
    return load_model("nuclei", device="cpu")


def test_doctests() -> None:
    for module in (finetune, schedule):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_training_starts_from_the_initial_weights_and_leaves_the_model_alone(nuclei_pairs, builtin):
    images, labels = nuclei_pairs
    before = {k: v.clone() for k, v in builtin.state_dict().items()}
    # a learning rate so small that the weights cannot move: what comes out is what went in
    model = fit_network(images, labels, "instances", train_config=SHORT.replace(lr=1e-9), init=builtin, options=CPU)
    after = model.state_dict()
    for name, _ in builtin.net.named_parameters():
        torch.testing.assert_close(after[name], before[name], atol=1e-6, rtol=0)  # 1e-9 steps, float32
    for name, tensor in builtin.state_dict().items():  # the initial model itself is untouched
        torch.testing.assert_close(tensor, before[name], atol=0, rtol=0)
    assert model.unet == builtin.unet and model.normalization == builtin.normalization
    assert model.normalization.polarity == "bright-objects"
    assert model.train_config.lr == pytest.approx(1e-9) and model.train_config.init_lr_factor == 1.0
    assert model.train_config.warmup_steps == 0  # 3 steps: at most a tenth of them


def test_first_epoch_is_far_better_than_from_scratch(nuclei_pairs, builtin):
    images, labels = nuclei_pairs
    tuned = fit_network(images, labels, "instances", train_config=SHORT, init=builtin, options=CPU)
    scratch = fit_network(images, labels, "instances", unet=builtin.unet, normalization=builtin.normalization,
                          train_config=SHORT, options=CPU)
    assert tuned.history["best_val_loss"] < 0.75 * scratch.history["best_val_loss"], (tuned.history, scratch.history)
    assert tuned.train_config.lr == pytest.approx(SHORT.lr) and scratch.train_config.lr == SHORT.lr
    assert scratch.train_config.warmup_steps == 0
    assert (tuned.train_config.keep, tuned.history["kept"]) == ("last", "last")  # fine-tuning keeps the last epoch
    assert (scratch.train_config.keep, scratch.history["kept"]) == ("auto", "best")
    assert tuned.history["kept_epoch"] == tuned.history["epochs"]
    from pixlearn.metrics import matching
    from pixlearn.predict import apply_model

    assert matching(labels[0], apply_model(tuned, images[0]), thresh=0.5).accuracy > 0.3


def test_colour_images_are_made_grey_for_a_grey_model(nuclei_pairs, builtin):
    images, labels = nuclei_pairs
    colour = [np.repeat(im, 3, axis=-1) for im in images]
    model = fit_network(colour, labels, "instances", train_config=SHORT.replace(epochs=1, steps_per_epoch=1),
                        init=builtin, options=CPU)
    assert model.n_channels == 1


def test_the_caller_may_replace_the_normalisation(nuclei_pairs, builtin):
    images, labels = nuclei_pairs
    model = fit_network(images, labels, "instances", train_config=SHORT.replace(steps_per_epoch=1),
                        normalization=NormalizeConfig(pmin=2.0), init=builtin, options=CPU)
    assert model.normalization == NormalizeConfig(pmin=2.0)


def test_conflicts_are_refused(nuclei_pairs, builtin):
    images, labels = nuclei_pairs
    depth = builtin.unet.depth
    with pytest.raises(PixlearnError, match=rf"architecture.*depth {depth - 1} \(the model's: {depth}\)"):
        fit_network(images, labels, "instances", unet=builtin.unet.replace(depth=depth - 1), init=builtin, options=CPU)
    with pytest.raises(PixlearnError, match="trained for the instances task, not semantic"):
        fit_network(images, [(lab > 0).astype(np.int64) for lab in labels], "semantic", init=builtin, options=CPU)
    assert finetune.start_from(builtin, "instances", unet=builtin.unet).unet == builtin.unet  # equal is fine


def test_a_semantic_model_keeps_its_classes(blobs_2d):
    image, labels = blobs_2d
    unet = UNetConfig(ndim=2, depth=1, base_channels=4, out_channels=3)
    targets = np.minimum(labels, 2).astype(np.int64)
    first = fit_network([image[..., None]], [targets], "semantic", unet=unet, class_names=("a", "b", "c"),
                        train_config=TrainConfig(epochs=1, steps_per_epoch=1, batch_size=1, patch_shape=(16, 16),
                                                 val_patches=1), options=CPU)
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=1, patch_shape=(16, 16), val_patches=1)
    two_classes = [(labels > 0).astype(np.int64)]  # fewer classes than the model has: fine
    tuned = fit_network([image[..., None]], two_classes, "semantic", train_config=cfg, init=first, options=CPU)
    assert tuned.class_names == ("a", "b", "c") and tuned.n_outputs == 3
    with pytest.raises(PixlearnError, match="need 4 classes but the initial model has 3"):
        fit_network([image[..., None]], [np.minimum(labels, 3).astype(np.int64)], "semantic", train_config=cfg,
                    init=first, options=CPU)


def test_the_initial_thresholds_win_a_tie():
    from pixlearn.nets.targets import instance_targets

    y = np.zeros((24, 24), int)
    y[3:10, 3:10], y[12:20, 4:12], y[5:12, 14:21] = 1, 2, 3
    outputs = [instance_targets(y)]  # perfect outputs: many settings score 1
    initial = InstanceThresholds(prob_thresh=0.6, seed_method="h_maxima", h=0.2, min_peak=0.3)
    base, grid = finetune.threshold_grid(initial.to_dict(), DEFAULT_TUNING_GRID)
    best, score = tune_instance_thresholds(outputs, [y], grid, base=base)
    assert score == 1.0 and best == initial
    assert finetune.threshold_grid(None, DEFAULT_TUNING_GRID) == (None, list(DEFAULT_TUNING_GRID))


def test_warm_up_follows_both_schedules():
    cfg = TrainConfig(epochs=1, steps_per_epoch=100, lr=1.0, warmup_steps=10, warmup_fraction=0.0)
    rates = [schedule.learning_rate(cfg, s, s / 100) for s in range(12)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(schedule.cosine_learning_rate(cfg, 0.09))
    assert all(a < b for a, b in zip(rates[:9], rates[1:10]))
    plateau = cfg.replace(schedule="plateau")
    assert [schedule.learning_rate(plateau, s, s / 100) for s in (0, 9, 10)] == [pytest.approx(0.1), 1.0, None]
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
    with pytest.raises(ValueError, match="init_lr_factor"):
        TrainConfig(init_lr_factor=0.0)
