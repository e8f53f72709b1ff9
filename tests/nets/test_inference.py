"""The eval-only fast copy of a network (:mod:`pixlearn.nets.inference`) and its use in NetworkModel."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from pixlearn.nets import UNet, UNetConfig
from pixlearn.nets.inference import fuse_conv_bn, inference_copy
from pixlearn.nets.model import NetworkModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(ndim, norm, out_channels=3, seed=0):
    """A tiny U-Net with random weights and non-trivial normalisation statistics and affine terms."""
    cfg = UNetConfig(ndim=ndim, in_channels=2, out_channels=out_channels, depth=2, base_channels=4, norm=norm)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(cfg)
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.InstanceNorm3d,
                                   nn.GroupNorm)):
                with torch.no_grad():
                    module.weight.uniform_(0.5, 2.0)
                    module.bias.uniform_(-0.5, 0.5)
    return cfg, net.eval()


def _blocks(ndim, seed=1):
    shape = (2,) + (6,) * (ndim - 2) + (20, 19, 2)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _reference(net, blocks):
    """The unfused network on (B, C, ...) input, outputs moved to channel-last."""
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(blocks, -1, 1)))
    with torch.inference_mode():
        return np.moveaxis(net(x).numpy(), 1, -1)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("norm", ["batch", "none", "instance", "group"])
def test_inference_copy_equals_network(ndim, norm):
    _, net = _net(ndim, norm)
    before = _state(net)
    blocks = _blocks(ndim)
    fast = inference_copy(net, ndim)
    x = torch.from_numpy(blocks).permute(0, ndim + 1, *range(1, ndim + 1))  # channels-last view
    with torch.inference_mode():
        result = fast(x).permute(0, *range(2, ndim + 2), 1).numpy()
    np.testing.assert_allclose(result, _reference(net, blocks), rtol=0, atol=1e-4)
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


_NORM_TYPES = {"batch": nn.modules.batchnorm._BatchNorm, "instance": nn.modules.instancenorm._InstanceNorm,
               "group": nn.GroupNorm}


def _count(module, norm):
    return sum(isinstance(m, _NORM_TYPES[norm]) for m in module.modules())


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("norm", ["batch", "instance", "group"])
def test_fuse_folds_batch_norm_only(ndim, norm):
    _, net = _net(ndim, norm)
    fused = fuse_conv_bn(net)
    assert _count(net, norm) > 0 and fused is not net and not fused.training
    assert _count(fused, "batch") == 0
    if norm != "batch":  # statistics of the input: not foldable
        assert _count(fused, norm) == _count(net, norm)
    assert _count(net, norm) == 2 * 3 + 2 * 2  # the original keeps them all: 3 encoder + 2 decoder blocks of 2


def test_fuse_conv_bn_sequential():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).eval()
    net[1].running_mean.fill_(0.3)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fused = fuse_conv_bn(net)
    assert [type(m) for m in fused] == [nn.Conv2d, nn.Identity, nn.ReLU]
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), net(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("norm", ["batch", "none", "instance"])
@pytest.mark.parametrize("task", ["semantic", "instances", "restore"])
def test_network_model_predicts_with_fast_copy(ndim, norm, task):
    cfg, net = _net(ndim, norm, out_channels=2 if task == "instances" else 3)
    model = NetworkModel(cfg, task, net, device="cpu")
    before = model.state_dict()
    blocks = _blocks(ndim)
    expected = torch.from_numpy(_reference(net, blocks))
    if task == "semantic":
        expected = torch.softmax(expected, dim=-1)
    elif task == "instances":
        expected = torch.sigmoid(expected)
    result = model.predict_batch(blocks)
    assert result.dtype == np.float32 and result.shape == blocks.shape[:-1] + (cfg.out_channels,)
    assert result.flags.c_contiguous
    np.testing.assert_allclose(result, expected.numpy(), rtol=0, atol=1e-4)
    # batch of 1 vs 2: oneDNN may pick other kernels, float rounding only
    np.testing.assert_allclose(model.predict_raw(blocks[1]), result[1], rtol=0, atol=1e-5)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    if norm == "batch":  # the training network keeps its batch norms
        assert _count(model.net, "batch") == _count(_net(ndim, norm)[1], "batch") > 0


def test_fast_copy_cached_and_rebuilt_when_weights_change():
    cfg, net = _net(2, "batch")
    model = NetworkModel(cfg, "restore", net, device="cpu")
    blocks = _blocks(2)
    first = model.predict_batch(blocks)
    fast = model._fast[1]
    model.predict_batch(blocks)
    assert model._fast[1] is fast  # built once
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        model.net.head.bias.add_(1.0)
    shifted = model.predict_batch(blocks)
    assert model._fast[1] is not fast
    np.testing.assert_allclose(shifted, first + 1.0, rtol=0, atol=1e-4)
    model.to("cpu")
    assert model._fast is None
    np.testing.assert_array_equal(model.predict_batch(blocks), shifted)


def test_fast_copy_not_pickled():
    cfg, net = _net(2, "batch")
    model = NetworkModel(cfg, "semantic", net, device="cpu")
    blocks = _blocks(2)
    result = model.predict_batch(blocks)
    copy = pickle.loads(pickle.dumps(model))
    assert copy._fast is None
    np.testing.assert_array_equal(copy.predict_batch(blocks), result)
