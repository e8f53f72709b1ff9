"""Training throughput (patches/s) of pixlearn's U-Net against MONAI's ``UNet``, same run.

Both networks have the channels (16, 32, 64, 128, 256), take 256x256 single-channel patches in
batches of 8, and are trained with the same loss (pixlearn's cross-entropy + Dice, 2 classes)
and optimizer (AdamW, lr 1e-3). pixlearn's network is the one :func:`pixlearn.nets.autoconfig.auto_config`
chooses for 2D data with objects of 16 px or more on a CPU (4 down-samplings by strided
convolution, one conv + batch norm + ReLU per level and path, added skips, 1x1 + nearest
up-sampling, a 2x space-to-depth stem); MONAI's is its default ``UNet`` (strided convolutions, instance norm,
PReLU). The two are measured in alternating rounds, so that load from other processes hits
both alike, and each figure is the median over steps (the first step of each round is warm-up).
Both are timed at torch's default thread count (what ``pixlearn train`` uses) and at 1 thread;
``train_speedup_vs_monai`` compares each network at its faster setting (on a machine shared with
other busy processes, 1 thread is several times faster for both: OpenMP threads wait for
each other at every operator). Also reported: forward GFLOP per patch of each network; with
``--variants``, pixlearn's throughput with bf16 autocast and channels_last on this CPU, the path
that ``TrainConfig(precision="auto")`` takes here (:func:`pixlearn.nets.precision.resolve_precision`,
with its timings of the short probe) and the classic U-Net that ``auto_config`` picks on CUDA.
The headline figures run both networks in fp32 with contiguous memory; the JSON records that
(``precision``) and the CPU's flags (``cpu_flags``). ``train_speedup_vs_monai_auto`` times
pixlearn on the path ``pixlearn train`` takes on this machine (``auto_precision``: bf16 autocast
and channels_last only where the detector measured them faster) against MONAI as its users run it
(fp32), both at torch's default thread count.

Run: ``.venv/bin/python benchmarks/train_throughput.py [--rounds 3 --steps 3 --variants]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from _common import cpu_facts, print_table, write_results
from pixlearn.nets.precision import resolve_precision

CHANNELS = (16, 32, 64, 128, 256)
PATCH = (256, 256)
BATCH = 8


def _ours_config(**changes: object) -> object:
    """What :func:`pixlearn.nets.autoconfig.auto_config` picks on a CPU for 256x256 patches of 2D
    images with objects about 40 px across (so the benchmark follows the library's choice)."""
    import numpy as np

    from pixlearn.nets.autoconfig import auto_config

    labels = np.zeros((512, 512), np.uint16)
    for i, (r, c) in enumerate([(60, 60), (200, 300), (400, 120), (350, 420)], start=1):
        labels[r - 20:r + 20, c - 20:c + 20] = i
    cfg, train_cfg = auto_config([np.zeros((512, 512, 1), np.float32)], [labels], "semantic", "YXC",
                                 out_channels=2, device="cpu")
    if cfg.channels != CHANNELS or train_cfg.patch_shape != PATCH:
        raise RuntimeError(f"auto_config chose channels {cfg.channels}, patch {train_cfg.patch_shape}")
    return cfg.replace(**changes)


def _ours(**changes: object) -> torch.nn.Module:
    from pixlearn.nets.unet import UNet

    return UNet(_ours_config(**changes))


def _monai() -> torch.nn.Module:
    from monai.networks.nets import UNet as MonaiUNet

    return MonaiUNet(spatial_dims=2, in_channels=1, out_channels=2, channels=CHANNELS, strides=(2, 2, 2, 2))


class _Trainer:
    """One network, its optimizer and a fixed batch; :meth:`step` runs one training step."""

    def __init__(self, net: torch.nn.Module, *, channels_last: bool = False, bf16: bool = False) -> None:
        from pixlearn.nets.losses import cross_entropy_dice

        gen = torch.Generator().manual_seed(0)
        self.net = net.train()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.x = torch.randn(BATCH, 1, *PATCH, generator=gen).contiguous(memory_format=self.memory_format)
        self.y = (torch.rand(BATCH, *PATCH, generator=gen) > 0.7).long()
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=1e-3, fused=True)  # as pixlearn.nets.training
        self.loss = cross_entropy_dice
        self.bf16 = bf16

    def step(self) -> float:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss(self.net(self.x), self.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        return time.perf_counter() - start


def _gflop(net: torch.nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 1, *PATCH))
    net.train()
    return counter.get_total_flops() / 1e9


def _measure(trainers: dict[str, _Trainer], rounds: int, steps: int, threads: int) -> dict[str, float]:
    """Patches/s per trainer: alternating rounds of 1 warm-up + `steps` timed steps, medians."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    try:
        for _ in range(rounds):
            for name, trainer in trainers.items():
                trainer.step()  # warm-up (allocator, oneDNN primitive cache)
                times[name] += [trainer.step() for _ in range(steps)]
    finally:
        torch.set_num_threads(previous)
    return {name: BATCH / statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network and round (after 1 warm-up)")
    parser.add_argument("--variants", action="store_true",
                        help="also time bf16 autocast, channels_last and the classic (GPU-default) U-Net")
    args = parser.parse_args(argv)
    torch.manual_seed(0)  # a script, not library code: global seeding is fine here
    default_threads = torch.get_num_threads()
    started = time.perf_counter()

    trainers = {"pixlearn": _Trainer(_ours()), "monai": _Trainer(_monai())}
    rate = _measure(trainers, args.rounds, args.steps, default_threads)
    rate_1 = _measure(trainers, args.rounds, args.steps, 1) if default_threads > 1 else dict(rate)
    variants: dict[str, float] = {}
    path = resolve_precision("auto", "cpu", mode="train")  # what `pixlearn train` takes on this machine
    auto = {"pixlearn": _Trainer(_ours(), channels_last=path.channels_last, bf16=path.dtype == "bf16"),
            "monai": trainers["monai"]}
    rate_auto = _measure(auto, args.rounds, args.steps, default_threads)
    if args.variants:
        extra = {
            "bf16 autocast": _Trainer(_ours(), bf16=True),
            "channels_last": _Trainer(_ours(), channels_last=True),
            "classic U-Net (GPU default)": _Trainer(_ours(convs_per_block=2, downsample="maxpool", upsample="transpose",
                                                          skip_merge="concat", stem_factor=1)),
        }
        variants = _measure({"pixlearn": trainers["pixlearn"], **extra}, 2, 2, 1)  # 1 thread: steadier
    seconds = time.perf_counter() - started

    flops = {"pixlearn": _gflop(_ours()), "monai": _gflop(_monai())}
    best = {name: max(rate[name], rate_1[name]) for name in rate}  # each network at its best thread count
    speedup = best["pixlearn"] / best["monai"]
    speedup_default, speedup_1 = rate["pixlearn"] / rate["monai"], rate_1["pixlearn"] / rate_1["monai"]
    speedup_auto = rate_auto["pixlearn"] / rate_auto["monai"]
    rows = [
        (f"train patches/s, {default_threads} threads", rate["pixlearn"], rate["monai"]),
        ("train patches/s, 1 thread", rate_1["pixlearn"], rate_1["monai"]),
        ("train patches/s, best threads", best["pixlearn"], best["monai"]),
        (f"train patches/s, {default_threads} threads, pixlearn on {path.name}", rate_auto["pixlearn"], rate_auto["monai"]),
        ("forward GFLOP / patch", flops["pixlearn"], flops["monai"]),
        ("parameters (M)", sum(p.numel() for p in _ours().parameters()) / 1e6,
         sum(p.numel() for p in _monai().parameters()) / 1e6),
    ]
    print_table(f"training throughput, 256x256 batch 8, channels {CHANNELS}", rows, headers=("metric", "pixlearn", "monai"))
    for name, value in variants.items():
        print(f"  1 thread: {name:<34} {value:8.2f} patches/s")
    print(f"train_speedup_vs_monai = {speedup:.2f} (each at its best thread count; {speedup_default:.2f} at "
          f"{default_threads} threads, {speedup_1:.2f} at 1 thread)")
    print(f"train_speedup_vs_monai_auto = {speedup_auto:.2f} (pixlearn on the path `pixlearn train` takes here, "
          f"{path.name}; MONAI in fp32, its default); benchmark time {seconds:.0f} s")
    figures = {
        "train_speedup_vs_monai": round(speedup, 3),
        "train_speedup_vs_monai_default_threads": round(speedup_default, 3),
        "train_speedup_vs_monai_1_thread": round(speedup_1, 3),
        "train_speedup_vs_monai_auto": round(speedup_auto, 3),
        "pixlearn_patches_per_s_auto": round(rate_auto["pixlearn"], 3),
        "monai_patches_per_s_auto": round(rate_auto["monai"], 3),
        "pixlearn_patches_per_s": round(best["pixlearn"], 3),
        "monai_patches_per_s": round(best["monai"], 3),
        "pixlearn_patches_per_s_default_threads": round(rate["pixlearn"], 3),
        "monai_patches_per_s_default_threads": round(rate["monai"], 3),
        "pixlearn_patches_per_s_1_thread": round(rate_1["pixlearn"], 3),
        "monai_patches_per_s_1_thread": round(rate_1["monai"], 3),
        "pixlearn_gflop_per_patch": round(flops["pixlearn"], 3),
        "monai_gflop_per_patch": round(flops["monai"], 3),
        "pixlearn_config": _ours_config().to_dict(),
        "threads": default_threads,
        "benchmark_seconds": round(seconds, 1),
        "device": "cpu",
        "variants_patches_per_s": {k: round(v, 3) for k, v in variants.items()},
        "precision": "fp32",  # both trainers: no autocast, contiguous memory
        "auto_precision": path.record(),
        **cpu_facts(),
    }
    write_results("train_throughput", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
