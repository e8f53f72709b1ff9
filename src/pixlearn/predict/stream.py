"""Tile streaming: read blocks of a (lazy) image, batch them by shape, run a predict function.

The next batch is read on a background thread while the current one is predicted, so reading a
Zarr or TIFF store overlaps with computing. Everything here is backend-free: a *predict
function* ``predict_fn(block) -> outputs`` maps a float32 block ``(..., C)`` to ``(..., K)``
(batched: ``(B, ..., C)`` to ``(B, ..., K)``).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]
Region = tuple[slice, ...]


def _read(image: Any, region: Region) -> np.ndarray:
    return np.asarray(image[region + (slice(None),)], dtype=np.float32)


def shape_of(region: Region) -> tuple[int, ...]:
    """Shape of a region of slices with explicit starts and stops."""
    return tuple(s.stop - s.start for s in region)


def _batches(regions: Iterable[Any], batch_size: int, key: Callable[[Any], Any]) -> Iterator[list[Any]]:
    """Consecutive groups of at most `batch_size` items with equal `key` (tile shape)."""
    batch: list[Any] = []
    for item in regions:
        if batch and (len(batch) == batch_size or key(item) != key(batch[0])):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def predict_stream(
    image: Any,
    items: Sequence[Any],
    region_of: Callable[[Any], Region],
    predict_fn: PredictFn,
    batch_size: int,
    batched: bool,
    progress: Any = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """Yield ``(item, prediction)`` in order; the next batch is read while this one runs."""
    groups = list(_batches(items, batch_size if batched else 1, lambda t: shape_of(region_of(t))))

    def load(group: list[Any]) -> list[np.ndarray]:
        return [_read(image, region_of(t)) for t in group]

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, groups[0]) if groups else None
        for i, group in enumerate(groups):
            assert pending is not None  # one is submitted for every group
            blocks = pending.result()
            pending = pool.submit(load, groups[i + 1]) if i + 1 < len(groups) else None
            if batched:
                outputs = np.asarray(predict_fn(np.stack(blocks)))
                preds = list(outputs)
            else:
                preds = [np.asarray(predict_fn(blocks[0]))]
            for item, block, pred in zip(group, blocks, preds):
                if pred.shape[:-1] != block.shape[:-1] or pred.ndim != block.ndim:
                    raise ValueError(
                        f"predict_fn returned shape {pred.shape} for a block of shape {block.shape}; "
                        "expected the same spatial shape and a channel axis"
                    )
                yield item, pred.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(group))
