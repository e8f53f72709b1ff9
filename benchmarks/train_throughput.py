"""Training throughput (patches/s) of pixlearn's U-Net against MONAI's ``UNet``, same run.

Both networks have the channels (16, 32, 64, 128, 256), take 256x256 single-channel patches in
batches of 8, and are trained with the same loss (pixlearn's cross-entropy + Dice, 2 classes)
and optimizer (AdamW, lr 1e-3). pixlearn's network is the one :func:`pixlearn.training.auto_config`
chooses for 2D data with objects of 16 px or more on a CPU (4 poolings, batch norm + ReLU, a 2x
space-to-depth stem); MONAI's is its default ``UNet`` (strided convolutions, instance norm,
PReLU). The two are measured in alternating rounds, so that load from other processes hits
both alike, and each figure is the median over steps (the first step of each round is warm-up).
Also reported: forward GFLOP per patch of each network, and pixlearn's throughput with bf16
autocast and with channels_last on this CPU (the data behind the ``"auto"`` defaults).

Run: ``.venv/bin/python benchmarks/train_throughput.py [--rounds 3 --steps 4]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import print_table, write_results  # noqa: E402

CHANNELS = (16, 32, 64, 128, 256)
PATCH = (256, 256)
BATCH = 8


def _ours(stem_factor: int = 2) -> torch.nn.Module:
    from pixlearn.nets.unet import UNet, UNetConfig

    cfg = UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=4, base_channels=16, channel_growth=2.0,
                     stem_factor=stem_factor)
    assert cfg.channels == CHANNELS
    return UNet(cfg)


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
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per network and round (after 1 warm-up)")
    parser.add_argument("--no-variants", action="store_true", help="skip the bf16/channels_last/no-stem rows")
    args = parser.parse_args(argv)
    torch.manual_seed(0)  # a script, not library code: global seeding is fine here

    trainers = {"pixlearn": _Trainer(_ours()), "monai": _Trainer(_monai())}
    if not args.no_variants:
        trainers["pixlearn bf16 autocast"] = _Trainer(_ours(), bf16=True)
        trainers["pixlearn channels_last"] = _Trainer(_ours(), channels_last=True)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    started = time.perf_counter()
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            trainer.step()  # warm-up (allocator, oneDNN primitive cache)
            times[name] += [trainer.step() for _ in range(args.steps)]
    rate = {name: BATCH / statistics.median(t) for name, t in times.items()}
    no_stem_rate = None
    if not args.no_variants:  # the classic full-resolution U-Net, for the record (slow: 2 steps)
        trainer = _Trainer(_ours(stem_factor=1))
        trainer.step()
        no_stem_rate = BATCH / statistics.median([trainer.step() for _ in range(2)])
    seconds = time.perf_counter() - started

    flops = {"pixlearn": _gflop(_ours()), "monai": _gflop(_monai()), "pixlearn_no_stem": _gflop(_ours(stem_factor=1))}
    speedup = rate["pixlearn"] / rate["monai"]
    rows = [
        ("train patches/s", rate["pixlearn"], rate["monai"]),
        ("forward GFLOP / patch", flops["pixlearn"], flops["monai"]),
        ("parameters (M)", sum(p.numel() for p in _ours().parameters()) / 1e6,
         sum(p.numel() for p in _monai().parameters()) / 1e6),
    ]
    print_table(f"training throughput, 256x256 batch 8, channels {CHANNELS}, {torch.get_num_threads()} threads",
                rows, headers=("metric", "pixlearn", "monai"))
    if not args.no_variants:
        print(f"pixlearn bf16 autocast:   {rate['pixlearn bf16 autocast']:.2f} patches/s")
        print(f"pixlearn channels_last:   {rate['pixlearn channels_last']:.2f} patches/s")
        print(f"pixlearn without stem:    {no_stem_rate:.2f} patches/s ({flops['pixlearn_no_stem']:.2f} GFLOP/patch)")
    print(f"train_speedup_vs_monai = {speedup:.2f}  (benchmark time {seconds:.0f} s)")
    figures = {
        "train_speedup_vs_monai": round(speedup, 3),
        "pixlearn_patches_per_s": round(rate["pixlearn"], 3),
        "monai_patches_per_s": round(rate["monai"], 3),
        "pixlearn_gflop_per_patch": round(flops["pixlearn"], 3),
        "monai_gflop_per_patch": round(flops["monai"], 3),
        "benchmark_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }
    if not args.no_variants:
        figures.update({
            "pixlearn_bf16_patches_per_s": round(rate["pixlearn bf16 autocast"], 3),
            "pixlearn_channels_last_patches_per_s": round(rate["pixlearn channels_last"], 3),
            "pixlearn_no_stem_patches_per_s": round(no_stem_rate, 3),
            "pixlearn_no_stem_gflop_per_patch": round(flops["pixlearn_no_stem"], 3),
        })
    write_results("train_throughput", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
