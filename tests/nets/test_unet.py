"""U-Net architecture, any-size input, receptive-field halo and tiling exactness, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixlearn.data.labels import IGNORE
from pixlearn.nets import (
    LOSSES,
    UNet,
    UNetConfig,
    anisotropic_pool_kernels,
    make_loss,
    receptive_field_halo,
    size_divisor,
)
from pixlearn.nets.autoconfig import LEAN_CPU
from pixlearn.nets.unet import _depth_to_space, _NearestUp, _space_to_depth

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _random_net(cfg: UNetConfig, seed: int = 0) -> UNet:
    """A net in eval mode with random weights and random batch-norm statistics."""
    torch.manual_seed(seed)
    net = UNet(cfg)
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.copy_(torch.rand(module.num_features, generator=gen) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return net.eval()


def test_config_round_trip_and_channels():
    cfg = UNetConfig(ndim=3, depth=2, base_channels=4, pool_kernels=((1, 2, 2), (2, 2, 2)), norm="group",
                     residual=True, stem_factor=2, max_channels=6)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.channels == (4, 6, 6)
    assert size_divisor(cfg) == (2, 8, 8)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"ndim": 4}, "ndim"),
        ({"norm": "layer"}, "norm"),
        ({"depth": 2, "pool_kernels": ((2, 2),)}, "pool_kernels"),
        ({"ndim": 3, "depth": 1, "pool_kernels": ((2, 2),)}, "pool_kernels"),
        ({"kernel_size": 4}, "odd"),
        ({"base_channels": 0}, "base_channels"),
        ({"final_activation": "softmax"}, "final_activation"),
        ({"skip_merge": "sum"}, "skip_merge"),
        ({"upsample": "bilinear"}, "upsample"),
        ({"downsample": "avgpool"}, "downsample"),
    ],
)
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        UNetConfig(**changes)


def test_anisotropic_pool_kernels():
    assert anisotropic_pool_kernels(3, 4.0) == ((1, 2, 2), (1, 2, 2), (2, 2, 2))
    assert anisotropic_pool_kernels(2, 1.0) == ((2, 2, 2), (2, 2, 2))


@pytest.mark.parametrize(
    "cfg, shape",
    [
        (UNetConfig(ndim=2, depth=2, base_channels=4, out_channels=3), (13, 7)),
        (UNetConfig(ndim=2, depth=2, base_channels=4, stem_factor=2, residual=True, in_channels=2), (17, 9)),
        (UNetConfig(ndim=2, depth=1, base_channels=4, norm="none"), (1, 1)),
        (UNetConfig(ndim=3, depth=2, base_channels=4, pool_kernels=((1, 2, 2), (2, 2, 2))), (5, 11, 9)),
        (UNetConfig(ndim=3, depth=2, base_channels=4, norm="instance", stem_factor=2), (3, 10, 6)),
        (UNetConfig(ndim=3, depth=1, base_channels=4, norm="group", residual=True), (7, 7, 7)),
        (UNetConfig(ndim=2, depth=3, base_channels=4, residual=True, **LEAN_CPU), (21, 6)),
        (UNetConfig(ndim=3, depth=2, base_channels=4, pool_kernels=((1, 2, 2), (2, 2, 2)), **LEAN_CPU), (3, 9, 5)),
    ],
)
def test_any_input_size(cfg, shape):
    net = UNet(cfg).eval()
    x = torch.randn(2, cfg.in_channels, *shape)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, cfg.out_channels, *shape)
    assert torch.isfinite(out).all()


def test_wrong_dimensionality_raises():
    net = UNet(UNetConfig(ndim=2, depth=1, base_channels=4))
    with pytest.raises(ValueError, match="spatial axes"):
        net(torch.zeros(1, 1, 4, 4, 4))


@pytest.mark.parametrize("factors", [(2, 2), (1, 2, 2), (2, 3, 2)])
def test_space_to_depth_round_trip(factors):
    size = tuple(f * 3 for f in factors)
    x = torch.randn(2, 3, *size)
    y = _space_to_depth(x, factors)
    assert y.shape == (2, 3 * int(np.prod(factors)), *(s // f for s, f in zip(size, factors)))
    assert torch.equal(_depth_to_space(y, factors), x)


@pytest.mark.parametrize("factors", [(2, 2), (4, 4), (3, 3), (1, 2, 2), (2, 3)])
def test_nearest_enlargement_copies_each_pixel(factors):
    up = _NearestUp(torch.nn.Identity(), factors)
    x = torch.randn((2, 3) + tuple(5 + i for i in range(len(factors))))
    expected = x
    for axis, f in enumerate(factors):
        expected = expected.repeat_interleave(f, dim=2 + axis)
    assert torch.equal(up(x), expected)
    assert up.mode == ("nearest" if all(f in (1, 2, 4) for f in factors) else "nearest-exact")


@pytest.mark.parametrize(
    "cfg, shape",
    [
        (UNetConfig(ndim=2, depth=2, base_channels=4), (96, 84)),
        (UNetConfig(ndim=2, depth=2, base_channels=4, stem_factor=2, residual=True), (110, 101)),
        (UNetConfig(ndim=3, depth=2, base_channels=4, pool_kernels=((1, 2, 2), (2, 2, 2))), (14, 70, 66)),
        (UNetConfig(ndim=2, depth=3, base_channels=4, stem_factor=2, **LEAN_CPU), (150, 133)),
        (UNetConfig(ndim=2, depth=2, base_channels=4, residual=True, **{**LEAN_CPU, "convs_per_block": 2}), (90, 77)),
        (UNetConfig(ndim=3, depth=2, base_channels=4, pool_kernels=((1, 2, 2), (2, 2, 2)), **LEAN_CPU), (12, 60, 52)),
    ],
)
def test_halo_makes_tiles_exact(cfg, shape):
    """Predicting a crop plus the halo and cropping equals the crop of the whole prediction,
    for cores that start at multiples of the size divisor (including one at the far border)."""
    net = _random_net(cfg)
    halo, divisor = receptive_field_halo(cfg), size_divisor(cfg)
    assert all(h % d == 0 for h, d in zip(halo, divisor))
    image = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = net(image)
    for corner in ("middle", "end"):
        core = []
        for s, d in zip(shape, divisor):
            start = (s // 2) // d * d if corner == "middle" else (s - 5) // d * d
            core.append((start, min(s, start + 9)))
        block = tuple(slice(max(0, a - h), min(s, b + h)) for (a, b), h, s in zip(core, halo, shape))
        with torch.no_grad():
            tile = net(image[(slice(None), slice(None)) + block])
        inner = tuple(slice(a - blk.start, b - blk.start) for (a, b), blk in zip(core, block))
        expected = whole[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in core)]
        np.testing.assert_allclose(tile[(slice(None), slice(None)) + inner].numpy(), expected.numpy(), atol=1e-4)


@pytest.mark.parametrize("lean", [False, True])
def test_halo_bounds_the_receptive_field(lean):
    """The gradient of one output pixel vanishes farther than the halo from it."""
    # no normalisation (biases instead) keeps ReLUs alive in a random net; in eval mode batch
    # norm is a per-channel affine map, which changes no dependency
    cfg = UNetConfig(ndim=2, depth=2, base_channels=4, stem_factor=2, norm="none", **(LEAN_CPU if lean else {}))
    net = _random_net(cfg)
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    net(x)[0, :, 64, 64].sum().backward()
    rows, cols = np.nonzero(x.grad[0, 0].numpy())
    halo = receptive_field_halo(cfg)
    assert rows.size > 0
    assert np.abs(rows - 64).max() <= halo[0] and np.abs(cols - 64).max() <= halo[1]


def test_losses_ignore_unannotated_pixels():
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :4] = IGNORE
    loss = make_loss("ce_dice")(logits, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.count_nonzero(logits.grad[:, :, :4]) == 0  # no gradient where unannotated
    assert torch.count_nonzero(logits.grad[:, :, 4:]) > 0
    perfect = torch.nn.functional.one_hot(target.clamp(min=0), 3).movedim(-1, 1).float() * 40 - 20
    assert float(make_loss("ce_dice")(perfect, target)) < 1e-3
    everything_ignored = torch.full((2, 8, 8), IGNORE)
    assert float(make_loss("ce")(logits.detach(), everything_ignored)) == 0.0


def test_instance_and_regression_losses():
    target = torch.zeros(1, 2, 6, 6)
    target[0, 0, 1:4, 1:4] = 1
    target[0, 1, 2, 2] = 1.0
    target[0, 1, 1:4, 1:4] += 0.5 * (target[0, 1, 1:4, 1:4] == 0)
    good = torch.cat([target[:, :1] * 40 - 20, torch.logit(target[:, 1:].clamp(1e-4, 1 - 1e-4))], 1)
    assert float(make_loss("instance")(good, target)) < 0.01
    assert float(make_loss("instance")(torch.zeros_like(target), target)) > 0.5
    assert float(make_loss("l1")(target, target)) == 0.0 and float(make_loss("mse")(target + 1, target)) == 1.0
    assert set(LOSSES) >= {"ce", "ce_dice", "bce", "bce_dice", "l1", "mse", "instance"}
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge")
