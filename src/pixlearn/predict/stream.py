"""Tile streaming: read blocks of a (lazy) image, batch them by shape, run a predict function.

The next batch is read on a background thread while the current one is predicted, so reading a
Zarr or TIFF store overlaps with computing. Everything here is backend-free: a *predict
function* ``predict_fn(block) -> outputs`` maps a float32 block ``(..., C)`` to ``(..., K)``
(batched: ``(B, ..., C)`` to ``(B, ..., K)``).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]
Region = tuple[slice, ...]
#: ``core_fn(blocks, inner)``: the outputs of the region `inner` of each block only (exact tiles).
CoreFn = Callable[[np.ndarray, Region], np.ndarray]


def _read(image: Any, region: Region) -> np.ndarray:
    return np.asarray(image[region + (slice(None),)], dtype=np.float32)


def shape_of(region: Region) -> tuple[int, ...]:
    """Shape of a region of slices with explicit starts and stops."""
    return tuple(s.stop - s.start for s in region)


def bounds_of(region: Region) -> tuple[tuple[int, int], ...]:
    """Start and stop per axis of a region of slices (hashable: a key to group tiles by)."""
    return tuple((s.start, s.stop) for s in region)


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
    predict_fn: PredictFn | CoreFn,
    batch_size: int,
    batched: bool,
    progress: Any = None,
    inner_of: Callable[[Any], Region] | None = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """Yield ``(item, prediction)`` in order; the next batch is read while this one runs.

    With `inner_of`, `predict_fn` is a :data:`CoreFn` called with the region of the blocks it
    keeps (items with equal block shapes and inner regions are batched), and each prediction
    covers that region only.
    """
    def key(item: Any) -> Any:
        return shape_of(region_of(item)), None if inner_of is None else bounds_of(inner_of(item))

    groups = list(_batches(items, batch_size if batched else 1, key))

    def load(group: list[Any]) -> list[np.ndarray]:
        return [_read(image, region_of(t)) for t in group]

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, groups[0]) if groups else None
        for i, group in enumerate(groups):
            assert pending is not None  # one is submitted for every group
            blocks = pending.result()
            pending = pool.submit(load, groups[i + 1]) if i + 1 < len(groups) else None
            inner = None if inner_of is None else inner_of(group[0])
            if inner is not None:
                preds = list(np.asarray(cast(CoreFn, predict_fn)(np.stack(blocks), inner)))
            elif batched:
                preds = list(np.asarray(cast(PredictFn, predict_fn)(np.stack(blocks))))
            else:
                preds = [np.asarray(cast(PredictFn, predict_fn)(blocks[0]))]
            for item, block, pred in zip(group, blocks, preds):
                want = block.shape[:-1] if inner is None else shape_of(inner)
                if pred.shape[:-1] != want or pred.ndim != block.ndim:
                    raise ValueError(
                        f"predict_fn returned shape {pred.shape} for a block of shape {block.shape}; "
                        f"expected the spatial shape {want} and a channel axis"
                    )
                yield item, pred.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(group))
