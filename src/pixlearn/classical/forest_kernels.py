"""The numba kernels behind :mod:`pixlearn.classical.forest` (node layout, probabilities, labels).

Importing this module needs numba (``ImportError`` otherwise) but compiles nothing: each kernel
is compiled on its first call, or loaded from numba's on-disk cache, and kept by its numba
dispatcher. :mod:`pixlearn.classical.forest` imports this module at its first use, so a process
that never predicts with a compiled forest never imports numba. See that module for the node
table the kernels walk. The helpers (:func:`tree_pass`, :func:`tree_block`, :func:`copy_chunk`,
:func:`argmax_row`, :func:`settle`) are inlined into the kernels that call them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["LANES", "ROUNDS", "forest_labels", "layout_nodes", "sum_fractions"]

#: Pixels of a block of :func:`tree_block` and the steps they take between tests for leaves.
LANES = 16
ROUNDS = 4


@njit(nogil=True, cache=True)
def layout_nodes(left, right, weight, depth_first):
    """New index of every node: siblings adjacent, heavier subtree first (or breadth first)."""
    n = left.shape[0]
    new = np.full(n, -1, np.int64)
    new[0] = 0
    todo = np.empty(n, np.int64)
    head = 0
    tail = 0
    todo[tail] = 0
    tail += 1
    nxt = 1
    while tail > head:
        if depth_first:
            tail -= 1
            u = todo[tail]
        else:
            u = todo[head]
            head += 1
        a = left[u]
        if a < 0:
            continue
        b = right[u]
        new[a] = nxt
        new[b] = nxt + 1
        nxt += 2
        if weight[a] >= weight[b]:  # pushed last, walked first
            todo[tail] = b
            todo[tail + 1] = a
        else:
            todo[tail] = a
            todo[tail + 1] = b
        tail += 2
    return new

@njit(nogil=True, cache=True, inline="always")
def tree_pass(x, n_features, nodes, thr, root, values, acc, n_pix, slot_pix, slot_node, nan_safe):
    """Add the leaf fractions of the tree at `root` for rows ``0..n_pix-1`` into `acc`.

    `x` is the chunk, pixel-major and flat (row ``p`` at ``p * n_features``); `nodes` and `thr`
    are the flat node table (4 words per node). ``len(slot_pix)`` pixels walk the tree at once,
    one level each per pass, so that their loads overlap; a pixel that reaches its leaf hands its
    slot to the next. The child step is branch-free (``left + (value > threshold)``); with
    `nan_safe` a NaN value takes scikit-learn's missing-value side instead. Indices are unsigned
    (no negative-index wraparound code in the hot loop).
    """
    n_classes = values.shape[1]
    group = slot_pix.shape[0]
    u4 = np.uint64(4)
    nxt = 0
    live = 0
    for j in range(group):
        slot_node[j] = root
        if nxt < n_pix:
            slot_pix[j] = nxt
            nxt += 1
            live += 1
        else:
            slot_pix[j] = -1
    while live > 0:
        for j in range(group):
            p = slot_pix[j]
            if p < 0:
                continue
            nd = slot_node[j]
            base = nd * u4
            lo = np.uint64(nodes[base + np.uint64(2)])
            if lo == nd:  # leaf: add its fractions, take the next pixel
                row = nodes[base + np.uint64(3)]
                for k in range(n_classes):
                    acc[p, k] += values[row, k]
                slot_node[j] = root
                if nxt < n_pix:
                    slot_pix[j] = nxt
                    nxt += 1
                else:
                    slot_pix[j] = -1
                    live -= 1
            else:
                v = x[np.uint64(p) * n_features + np.uint64(nodes[base])]
                go = lo + np.uint64(v > thr[base + np.uint64(1)])
                if nan_safe and v != v:
                    go = lo + np.uint64(1 - nodes[base + np.uint64(3)])
                slot_node[j] = go


@njit(nogil=True, cache=True, inline="always")
def tree_block(x, n_features, nodes, thr, root, values, acc, n_pix, lane_node, rounds):
    """:func:`tree_pass` without missing values, branch-free: ``len(lane_node)`` pixels at a time.

    A leaf points to itself with threshold ``+inf``, so the child step leaves a pixel that has
    reached its leaf where it is; the pixels of a block all take `rounds` steps at a time, with no
    test in the inner loop, until every one is at a leaf. (Measured on the VNC forest, 24 trees of
    mean leaf depth 20: 18% faster than the slot walk of :func:`tree_pass`, with its wasted steps.)
    """
    n_classes = values.shape[1]
    lanes = lane_node.shape[0]
    u1, u2, u3, u4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for b0 in range(0, n_pix, lanes):
        m = min(lanes, n_pix - b0)
        for j in range(m):
            lane_node[j] = root
        done = False
        while not done:
            for _ in range(rounds):
                for j in range(m):
                    base = lane_node[j] * u4
                    v = x[np.uint64(b0 + j) * n_features + np.uint64(nodes[base])]
                    lane_node[j] = np.uint64(nodes[base + u2]) + np.uint64(v > thr[base + u1])
            done = True
            for j in range(m):
                done &= np.uint64(nodes[lane_node[j] * u4 + u2]) == lane_node[j]
        for j in range(m):
            row = nodes[lane_node[j] * u4 + u3]
            for k in range(n_classes):
                acc[b0 + j, k] += values[row, k]


@njit(nogil=True, cache=True, inline="always")
def copy_chunk(features, c0, c1, buf):
    """Rows ``c0:c1`` of `features` into the flat pixel-major `buf`; whether any is NaN.

    Reads along the contiguous axis of `features` (a feature-major stack seen as (n, F) has
    rows a few bytes apart and features megabytes apart).
    """
    n_features = features.shape[1]
    nan = False
    if features.strides[0] < features.strides[1]:
        for f in range(n_features):
            for r in range(c1 - c0):
                v = features[c0 + r, f]
                buf[r * n_features + f] = v
                nan |= v != v
    else:
        for r in range(c1 - c0):
            for f in range(n_features):
                v = features[c0 + r, f]
                buf[r * n_features + f] = v
                nan |= v != v
    return nan


@njit(nogil=True, cache=True)
def sum_fractions(features, nodes, thr, roots, values, out, start, stop, chunk, group):
    """Sum of leaf fractions over all trees for rows ``start:stop``, into those rows of `out`."""
    n_classes = values.shape[1]
    n_features = np.uint64(features.shape[1])
    flat_nodes = nodes.reshape(-1)
    flat_thr = thr.reshape(-1)
    buf = np.empty(chunk * features.shape[1], np.float32)
    acc = np.empty((chunk, n_classes), np.float32)
    slot_pix = np.empty(group, np.int64)
    slot_node = np.empty(group, np.uint64)
    lane_node = np.empty(LANES, np.uint64)
    for c0 in range(start, stop, chunk):
        c1 = min(c0 + chunk, stop)
        nan = copy_chunk(features, c0, c1, buf)
        acc[:] = 0.0
        for t in range(roots.shape[0]):
            root = np.uint64(roots[t])
            if nan:
                tree_pass(buf, n_features, flat_nodes, flat_thr, root, values, acc, c1 - c0, slot_pix, slot_node, True)
            else:
                tree_block(buf, n_features, flat_nodes, flat_thr, root, values, acc, c1 - c0, lane_node, ROUNDS)
        for r in range(c1 - c0):
            for k in range(n_classes):
                out[c0 + r, k] = acc[r, k]


@njit(nogil=True, cache=True, inline="always")
def argmax_row(votes, r):
    best = 0
    for k in range(1, votes.shape[1]):
        if votes[r, k] > votes[r, best]:
            best = k
    return best


@njit(nogil=True, cache=True, inline="always")
def settle(votes, buf, origin, out, n_active, nf, remaining):
    """Label the active rows whose lead is final; compact the others to the front. Returns how many stay."""
    n_classes = votes.shape[1]
    kept = 0
    for a in range(n_active):
        first = -np.inf
        second = -np.inf
        for k in range(n_classes):
            v = votes[a, k]
            if v > first:
                second = first
                first = v
            elif v > second:
                second = v
        # each tree adds at most 1 to any class: a larger lead is final
        if first - second > remaining + 1e-3:
            out[origin[a]] = argmax_row(votes, a)
            continue
        if kept != a:
            for f in range(nf):
                buf[kept * nf + f] = buf[a * nf + f]
            for k in range(n_classes):
                votes[kept, k] = votes[a, k]
            origin[kept] = origin[a]
        kept += 1
    return kept


@njit(nogil=True, cache=True)
def forest_labels(features, nodes, thr, roots, values, out, start, stop, chunk, group, tree_group):
    """Column of the largest summed fraction per row, skipping trees that cannot matter.

    After every `tree_group` trees, pixels whose lead is final get their label and leave: the
    chunk's rows (features, votes) are compacted so that the active ones stay contiguous.
    """
    n_classes = values.shape[1]
    n_trees = roots.shape[0]
    nf = features.shape[1]
    n_features = np.uint64(nf)
    flat_nodes = nodes.reshape(-1)
    flat_thr = thr.reshape(-1)
    buf = np.empty(chunk * nf, np.float32)
    votes = np.empty((chunk, n_classes), np.float32)
    origin = np.empty(chunk, np.int64)
    slot_pix = np.empty(group, np.int64)
    slot_node = np.empty(group, np.uint64)
    lane_node = np.empty(LANES, np.uint64)
    for c0 in range(start, stop, chunk):
        n_active = min(chunk, stop - c0)
        nan = copy_chunk(features, c0, c0 + n_active, buf)
        votes[:] = 0.0
        for r in range(n_active):
            origin[r] = c0 + r
        for t0 in range(0, n_trees, tree_group):
            t1 = min(n_trees, t0 + tree_group)
            for t in range(t0, t1):
                root = np.uint64(roots[t])
                if nan:
                    tree_pass(buf, n_features, flat_nodes, flat_thr, root, values, votes, n_active, slot_pix, slot_node, True)
                else:
                    tree_block(buf, n_features, flat_nodes, flat_thr, root, values, votes, n_active, lane_node, ROUNDS)
            remaining = n_trees - t1
            if remaining == 0:
                break
            kept = settle(votes, buf, origin, out, n_active, nf, remaining)
            n_active = kept
            if n_active == 0:
                break
        for a in range(n_active):
            out[origin[a]] = argmax_row(votes, a)
