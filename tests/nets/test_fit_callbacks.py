"""``fit_network(options=FitOptions(callbacks=...))``: per-epoch progress, and a callback that stops keeps the best model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")


def test_a_callback_sees_each_epoch_and_can_stop_training(blobs_2d, one_torch_thread) -> None:
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.training import TrainConfig
    from pixlearn.nets.unet import UNetConfig

    image, labels = blobs_2d
    targets = np.full(labels.shape, -1, np.int64)
    targets[::4, ::4] = (labels[::4, ::4] > 0).astype(np.int64)  # sparse, like scribbles
    seen = []

    def callback(epoch, record, net):
        seen.append((epoch, sorted(record)))
        return epoch >= 2

    model = fit_network([image[..., None]], [targets], "semantic",
                        unet=UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=1, base_channels=4),
                        train_config=TrainConfig(epochs=10, steps_per_epoch=1, batch_size=2, patch_shape=(16, 16),
                                                 val_patches=2, patience=0),
                        options=FitOptions(callbacks=(callback,), device="cpu"))
    assert [e for e, _ in seen] == [1, 2]
    assert {"train_loss", "val_loss", "epoch"} <= set(seen[0][1])
    assert model.history["epochs"] == 2 and model.history["stop_reason"] == "callback"
