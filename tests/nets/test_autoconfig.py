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


def test_resolve_setup_keeps_an_explicit_batch_size_equal_to_the_old_default(blobs_2d):
    """Regression: ``batch_size=8`` (the former dataclass default) was taken for "not given"."""
    from pixlearn.nets.autoconfig import choose_batch_size
    from pixlearn.nets.fit import resolve_setup
    from pixlearn.nets.training import TrainConfig

    image, labels = blobs_2d
    images, labs = [image[..., None]], [(labels > 0).astype(np.int64)]
    auto_unet, auto_cfg = resolve_setup(images, labs, "semantic", out_channels=2, device="cpu")
    assert auto_cfg.is_resolved and auto_cfg.batch_size != 8  # so the test below can tell them apart
    assert auto_cfg.batch_size == choose_batch_size(auto_unet, auto_cfg.patch_shape, device="cpu")
    _, cfg = resolve_setup(images, labs, "semantic", out_channels=2, train_config=TrainConfig(batch_size=8),
                           device="cpu")
    assert cfg.batch_size == 8 and cfg.patch_shape == auto_cfg.patch_shape
    _, cfg = resolve_setup(images, labs, "semantic", out_channels=2,
                           train_config=TrainConfig(patch_shape=(16, 16)), device="cpu")
    assert cfg.patch_shape == (16, 16) and cfg.batch_size == choose_batch_size(auto_unet, (16, 16), device="cpu")


def test_resolve_setup_keeps_an_explicit_network(blobs_2d):
    from pixlearn.nets.fit import resolve_setup
    from pixlearn.nets.unet import UNetConfig

    image, labels = blobs_2d
    unet = UNetConfig(ndim=2, out_channels=2, depth=4, base_channels=4)  # depth 4: UNetConfig's default
    chosen, cfg = resolve_setup([image[..., None]], [labels], "instances", out_channels=2, unet=unet, device="cpu")
    assert chosen == unet and cfg.loss == "instance" and cfg.is_resolved


def test_train_config_none_means_choose():
    from pixlearn.nets.training import TrainConfig

    assert TrainConfig().batch_size is None and TrainConfig().patch_shape is None
    assert TrainConfig(patch_shape=()).patch_shape is None  # as files of the previous layout write it
    assert not TrainConfig(batch_size=8).is_resolved and TrainConfig(batch_size=8, patch_shape=(8, 8)).is_resolved


def test_class_widths_measure_bands_and_discs():
    from pixlearn.nets.autoconfig import class_widths

    labels = np.zeros((2, 64, 64), np.int64)  # a stack: measured plane by plane
    labels[:, :, 20:26] = 1  # a band 6 px wide
    rr, cc = np.indices((64, 64))
    labels[:, (rr - 32) ** 2 + (cc - 48) ** 2 <= 12**2] = 2  # a disc 25 px across
    labels[0, 0, 0] = -1  # unannotated: another class, not measured
    widths = class_widths([labels])
    assert set(widths) == {1, 2}  # class 0 (background) is not measured
    assert abs(widths[1] - 6.0) < 0.3
    assert 0.55 * 25 < widths[2] < 0.75 * 25  # two thirds of a disc's diameter
    assert class_widths([np.ones((8, 8), np.int64)]) == {}  # a class with no edge in its plane


def test_thin_classes_keep_full_resolution_and_cpu_batches_hold_a_pixel_budget():
    """The rule: a stem of 2 (half resolution) only when no class of dense semantic labels is
    thinner than MIN_STEM_SIZE_PX; on a CPU a batch holds at most CPU_BATCH_PIXELS working pixels."""
    from pixlearn.nets.autoconfig import CPU_BATCH_PIXELS, MIN_STEM_SIZE_PX, choose_batch_size

    rr, cc = np.indices((512, 512))
    cells = ((rr // 64 + cc // 64) % 2 + 1).astype(np.int64)  # large blocks of two classes
    image = np.zeros((512, 512, 1), np.float32)
    wide, cfg_wide = auto_config([image], [cells], "semantic", "YXC", out_channels=4, device="cpu")
    assert wide.stem_factor == 2
    thin = cells.copy()
    thin[(rr % 64 < 4) | (cc % 64 < 4)] = 3  # a 4-px membrane around every block
    assert 4 < MIN_STEM_SIZE_PX
    full, cfg_full = auto_config([image], [thin], "semantic", "YXC", out_channels=4, device="cpu")
    assert full.stem_factor == 1 and cfg_full.patch_shape == cfg_wide.patch_shape == (256, 256)
    assert full.depth == wide.depth + 1  # the coarsest level stays at least 8 pixels either way
    for unet, cfg in ((wide, cfg_wide), (full, cfg_full)):
        working = np.prod(cfg.patch_shape) / np.prod(unet.stem_factors)
        assert cfg.batch_size == max(2, min(16, int(CPU_BATCH_PIXELS / working)))
    assert (cfg_wide.batch_size, cfg_full.batch_size) == (16, 4)
    sparse = np.full((512, 512), -1, np.int64)  # scribbles: their strokes are not the structures
    sparse[(rr % 64 < 4)] = 3
    sparse[100:140, 100:140] = 1
    sparse[300:340, 300:340] = 2
    scribbled, _ = auto_config([image], [sparse], "semantic", "YXC", out_channels=4, device="cpu")
    assert scribbled.stem_factor == 2
    assert choose_batch_size(full, (256, 256), memory_mib=1e6, device="cpu") == 4  # the cap, not memory


def test_bf16_cpu_trains_instances_at_full_resolution_with_two_convolutions():
    """Where training runs in bf16 the costlier network of BF16_INSTANCES_CPU pays (DSB2018 measured);
    other tasks, fp32 and 3D keep the lean choice."""
    labels = np.zeros((512, 512), np.uint16)
    labels[100:140, 100:140] = 1
    labels[300:340, 200:240] = 2
    image = np.zeros((512, 512, 1), np.float32)
    lean, _ = auto_config([image], [labels], "instances", "YXC", out_channels=2, device="cpu")
    rich, cfg = auto_config([image], [labels], "instances", "YXC", out_channels=2, device="cpu", bf16=True)
    assert (lean.stem_factor, lean.convs_per_block) == (2, 1)
    assert (rich.stem_factor, rich.convs_per_block) == (1, 2)
    assert rich.skip_merge == lean.skip_merge and rich.base_channels == lean.base_channels
    assert rich.depth >= lean.depth and all(p % d == 0 for p, d in zip(cfg.patch_shape, size_divisor(rich)))
    short, _ = auto_config([image], [labels], "instances", "YXC", out_channels=2, device="cpu", bf16=True,
                           time_limit_s=600.0)
    assert short == lean  # a short budget: the lean network, which learns faster (5 minutes measured)
    semantic, _ = auto_config([image], [(labels > 0).astype(np.int64)], "semantic", "YXC", out_channels=2,
                              device="cpu", bf16=True)
    assert (semantic.stem_factor, semantic.convs_per_block) == (2, 1)


def test_resolve_setup_asks_the_precision_path_only_for_2d_instances_on_a_cpu(blobs_2d, monkeypatch):
    from pixlearn.nets import fit
    from pixlearn.nets.precision import PrecisionPath

    asked = []

    def fake(precision, device, **kwargs):
        asked.append(kwargs["ndim"])
        return PrecisionPath("bf16", True, "measured")

    monkeypatch.setattr(fit, "resolve_precision", fake)
    image, labels = blobs_2d
    unet, _ = fit.resolve_setup([image[..., None]], [labels], "instances", out_channels=2, device="cpu")
    assert asked == [2] and unet.convs_per_block == 2 and unet.stem_factor == 1
    fit.resolve_setup([image[..., None]], [(labels > 0).astype(np.int64)], "semantic", out_channels=2, device="cpu")
    assert asked == [2]
