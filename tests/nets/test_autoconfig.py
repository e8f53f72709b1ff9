"""Self-configuration: network and training set-up chosen from the data, 2D, 3D and restoration."""

from __future__ import annotations

import numpy as np

from pixlearn.nets import size_divisor
from pixlearn.nets.autoconfig import auto_config


def test_auto_config_2d_and_3d(blobs_2d, blobs_3d):
    image, labels = blobs_2d
    unet, cfg = auto_config([image[..., None]], [labels], "instances", "YXC", out_channels=2, device="cpu")
    assert unet.ndim == 2 and unet.out_channels == 2 and cfg.loss == "instance"
    assert all(p <= s and p % d == 0 for p, s, d in zip(cfg.patch_shape, image.shape, size_divisor(unet)))
    assert 2 <= cfg.batch_size <= 16
    big = np.zeros((512, 512), np.uint16)
    big[100:140, 100:140] = 1
    big[300:340, 200:240] = 2
    unet_big, cfg_big = auto_config([np.zeros((512, 512, 1), np.float32)], [big], "instances", "YXC",
                                    out_channels=2, device="cpu")
    assert unet_big.stem_factor == 2 and cfg_big.patch_shape == (256, 256)
    image3, labels3 = blobs_3d
    unet3, cfg3 = auto_config([image3[..., None]], [labels3], "semantic", "ZYXC", out_channels=2,
                              spacing=(4.0, 1.0, 1.0), device="cpu")
    assert unet3.ndim == 3 and unet3.level_pool_kernels[0] == (1, 2, 2)
    assert len(cfg3.patch_shape) == 3 and all(p <= s for p, s in zip(cfg3.patch_shape, image3.shape))
    _, cfg_restore = auto_config([image[..., None]], None, "restore", "YXC", out_channels=1, device="cpu")
    assert cfg_restore.loss == "l1" and not cfg_restore.augmentation.intensity
