"""The nets room's configuration dataclasses load without torch; loss names agree with the losses."""

from __future__ import annotations

import subprocess
import sys


def test_nets_config_imports_without_torch():
    code = ("import sys, pixlearn.nets.config, pixlearn.nets.patches, pixlearn.nets; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_loss_names_match_losses():
    from pixlearn.nets.config import LOSS_NAMES
    from pixlearn.nets.losses import LOSSES

    assert set(LOSS_NAMES) == set(LOSSES)


def test_room_front_lists_public_names():
    import pixlearn.nets as nets

    for name in nets.__all__:
        assert getattr(nets, name) is not None
    assert nets.TrainConfig is __import__("pixlearn.nets.training", fromlist=["TrainConfig"]).TrainConfig
