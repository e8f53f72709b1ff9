"""The image classifier's parts: network, configuration, data, augmentation, losses, schedule."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pixlearn.nets.classifier import ResidualClassifier, count_parameters  # noqa: E402
from pixlearn.nets.classify_config import (  # noqa: E402
    NO_CLASSIFY_AUGMENT,
    ClassifierNetConfig,
    ClassifyAugmentConfig,
    ClassifyConfig,
    ClassifyTrainConfig,
)
from pixlearn.nets.classify_data import (  # noqa: E402
    ClassifyDataset,
    augment_image,
    class_weights,
    dataset_bounds,
    fit_to_shape,
    stratified_split,
)
from pixlearn.nets.classify_training import classification_loss, learning_rate  # noqa: E402
from pixlearn.nets.inference import inference_copy  # noqa: E402


@pytest.mark.parametrize("ndim, channels, shape", [(2, 1, (24, 24)), (2, 3, (17, 30)), (3, 2, (5, 12, 9))])
def test_network_takes_any_size_dimension_and_channels(ndim, channels, shape, one_torch_thread):
    net = ResidualClassifier(ClassifierNetConfig(ndim=ndim, in_channels=channels, n_classes=3, width=4, depth=3))
    logits = net.eval()(torch.zeros(2, channels, *shape))
    assert logits.shape == (2, 3)
    assert net.features(torch.zeros(1, channels, *shape)).shape[1] == net.cfg.stage_widths[-1]
    assert count_parameters(net) > 0


def test_fused_inference_copy_equals_the_network(one_torch_thread):
    net = ResidualClassifier(ClassifierNetConfig(in_channels=2, n_classes=4, width=8, depth=3)).eval()
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():  # non-trivial statistics, so that the folding is exercised
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.normal_(generator=generator)
    x = torch.randn(3, 2, 20, 20, generator=generator)
    fast = inference_copy(net, 2)
    torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-4, rtol=1e-4)


def test_configs_round_trip_and_refuse_bad_values():
    cfg = ClassifyConfig(net=ClassifierNetConfig(width=16, depth=2),
                         train=ClassifyTrainConfig(loss="focal", input_shape=(32, 32), balance="weights"))
    assert ClassifyConfig.from_dict(cfg.to_dict()) == cfg
    assert ClassifierNetConfig(width=32, depth=4, max_width=100).stage_widths == (32, 64, 100, 100)
    for bad in ({"n_classes": 1}, {"ndim": 4}, {"norm": "layer"}, {"dropout": 1.0}):
        with pytest.raises(ValueError, match="ClassifierNetConfig"):
            ClassifierNetConfig(**bad)
    for bad in ({"loss": "hinge"}, {"balance": "oversample"}, {"label_smoothing": 1.0}, {"input_shape": (4,)}):
        with pytest.raises(ValueError, match="ClassifyTrainConfig"):
            ClassifyTrainConfig(**bad)
    with pytest.raises(ValueError, match="unknown keys"):
        ClassifyConfig.from_dict({"train": {"epoch": 3}})


def test_fit_to_shape_pads_and_crops():
    image = np.arange(5 * 9, dtype=np.float32).reshape(5, 9, 1)
    centred = fit_to_shape(image, (7, 5))
    assert centred.shape == (7, 5, 1)
    np.testing.assert_array_equal(centred[1:6, :, 0], image[:, 2:7, 0])  # padded by 1 row each side, 2 cols cropped
    rng = np.random.default_rng(0)
    assert all(fit_to_shape(image, (3, 3), rng).shape == (3, 3, 1) for _ in range(5))


@pytest.mark.parametrize("shape", [(16, 16, 3), (12, 20, 1), (4, 10, 10, 2)])
def test_augmentation_keeps_shape_and_leaves_the_input_alone(shape):
    rng = np.random.default_rng(1)
    image = rng.random(shape).astype(np.float32)
    before = image.copy()
    out = augment_image(image, rng, ClassifyAugmentConfig(blur_probability=1.0))
    assert out.shape == shape and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(augment_image(image, rng, NO_CLASSIFY_AUGMENT), image)


def test_stratified_split_holds_out_every_class():
    labels = np.array([0] * 20 + [1] * 5 + [2] * 1)
    train, val = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val], minlength=3).tolist() == [4, 1, 0]  # a single image is only trained on
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    np.testing.assert_array_equal(stratified_split(labels, 0.2, seed=0)[1], val)


def test_balanced_items_draw_classes_equally_and_repeat():
    labels = np.array([0] * 90 + [1] * 10)
    images = [np.full((6, 6, 1), float(c), np.float32) for c in labels]
    dataset = ClassifyDataset(images, labels, (6, 6), length=400, seed=3, augmentation=NO_CLASSIFY_AUGMENT,
                              balanced=True)
    dataset.set_epoch(1)
    drawn = np.array([dataset.item(i)[1] for i in range(400)])
    assert 0.4 < drawn.mean() < 0.6  # the rare class is drawn about half the time
    x, y = dataset[7]
    assert x.shape == (1, 6, 6) and float(x.mean()) == float(y)  # image and label of one draw
    again = ClassifyDataset(images, labels, (6, 6), length=400, seed=3, augmentation=NO_CLASSIFY_AUGMENT,
                            balanced=True)
    again.set_epoch(1)
    assert [again.item(i)[1] for i in range(50)] == drawn[:50].tolist()
    plain = ClassifyDataset(images, labels, (6, 6), seed=3, augmentation=NO_CLASSIFY_AUGMENT)
    plain.set_epoch(2)
    assert sum(plain.item(i)[1] for i in range(100)) == 10  # a permutation: every image once


def test_class_weights_and_dataset_bounds():
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 2), [0.5, 1.5])
    images = [np.stack([np.linspace(0, 100, 1000), np.full(1000, 7.0)], axis=-1).reshape(10, 100, 2)]
    low, high = dataset_bounds(images, 0.0, 100.0)
    np.testing.assert_allclose(low, [0.0, 7.0])
    np.testing.assert_allclose(high, [100.0, 8.0])  # a flat channel gets high = low + 1


def test_losses_weighting_smoothing_and_focal():
    generator = torch.Generator().manual_seed(0)
    logits, target = torch.randn(8, 3, generator=generator), torch.tensor([0, 1, 2, 0, 0, 1, 2, 2])
    weight = torch.tensor([0.5, 1.0, 2.0])
    expected = torch.nn.functional.cross_entropy(logits, target, weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(classification_loss(logits, target, weight=weight, label_smoothing=0.1), expected)
    plain = classification_loss(logits, target)
    assert float(classification_loss(logits, target, focal_gamma=2.0)) < float(plain)
    confident = torch.tensor([[10.0, -10.0, -10.0]])
    assert float(classification_loss(confident, torch.tensor([0]), focal_gamma=2.0)) < 1e-9


def test_learning_rate_warms_up_then_decays():
    cfg = ClassifyTrainConfig(epochs=10, lr=1.0, warmup_fraction=0.1)
    rates = [learning_rate(cfg, 10, step, 0.0) for step in range(100)]
    assert rates[0] == pytest.approx(0.1, rel=1e-3) and max(rates) == pytest.approx(1.0, abs=0.03)
    assert int(np.argmax(rates)) == 9 and rates[-1] < 0.02
    timed = ClassifyTrainConfig(epochs=1000, lr=1.0, time_limit_s=100.0)
    assert learning_rate(timed, 10, 5, 50.0) == pytest.approx(0.505, abs=1e-3)  # half the time: half the cosine
