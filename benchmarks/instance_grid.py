"""Instance post-processing: the default tuning grid against a wider one, on a saved DSB2018 model.

Run: ``.venv/bin/python benchmarks/instance_grid.py [--model PATH]`` (a model saved by
``networks.py --dsb-unet ... --save-model PATH``; default the built-in ``nuclei`` model, trained on
the DSB2018 train split only; several minutes on CPU).

The network runs once over the DSB2018 test split. Each grid is then judged by two-fold
cross-validation on the test images (thresholds tuned on one half, scored on the other, and back),
so that no figure is tuned on the images it is scored on: the pooled AP@0.5 over all test images
of each grid, one setting for all images and one per image group. The model's stored thresholds
(tuned on its validation images when it was trained) are scored beside them. Figures go to
``benchmarks/results/instance_grid.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from _common import DATA, print_table, write_results
from _dsb2018 import load_split
from pixlearn.data.pairs import to_grey
from pixlearn.metrics import matching_dataset
from pixlearn.postprocess.instances import InstanceThresholds, instances_from_outputs, stored_thresholds
from pixlearn.postprocess.tuning import DEFAULT_TUNING_GRID, tune_instance_thresholds
from pixlearn.predict import apply_model

#: The wider grid tried against :data:`DEFAULT_TUNING_GRID`: lower foreground thresholds, higher
#: seed thresholds (fewer merges of touching nuclei), lower and higher maxima, a size filter.
WIDE_GRID: tuple[dict[str, tuple[Any, ...]], ...] = (
    {"prob_thresh": (0.4, 0.5, 0.6), "seed_method": ("threshold",), "seed_thresh": (0.4, 0.5, 0.6, 0.7, 0.8),
     "min_peak": (0.0, 0.3, 0.5, 0.6), "min_size": (0, 8)},
    {"prob_thresh": (0.4, 0.5, 0.6), "seed_method": ("h_maxima",), "h": (0.05, 0.1, 0.15, 0.2, 0.3),
     "min_peak": (0.0, 0.3, 0.5, 0.6), "min_size": (0, 8)},
)


def folds(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of ``range(n)``, shuffled with `seed`."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def cross_validated(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray], grid: Any,
                    groups: Sequence[str] | None = None) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Each image segmented with thresholds tuned on the other fold (per group when `groups` is given)."""
    predictions: list[np.ndarray | None] = [None] * len(outputs)
    chosen = []
    keys = sorted(set(groups)) if groups is not None else [None]
    halves = folds(len(outputs))
    for tune, score in (halves, halves[::-1]):
        for key in keys:
            tune_idx = [i for i in tune if groups is None or groups[i] == key]
            score_idx = [i for i in score if groups is None or groups[i] == key]
            if not score_idx:
                continue
            if not tune_idx:  # a group absent from the tuning half: tune on the whole half
                tune_idx = list(tune)
            best, _ = tune_instance_thresholds([outputs[i] for i in tune_idx], [truth[i] for i in tune_idx], grid)
            chosen.append({"group": key, **best.to_dict()})
            for i in score_idx:
                predictions[i] = instances_from_outputs(outputs[i], best)
    assert all(p is not None for p in predictions)
    return [p for p in predictions if p is not None], chosen


def ap50(truth: Sequence[np.ndarray], predictions: Sequence[np.ndarray], groups: Sequence[str] | None = None,
         group: str | None = None) -> float:
    """Pooled AP@0.5 (over one group's images when `group` is given)."""
    idx = [i for i in range(len(truth)) if group is None or (groups is not None and groups[i] == group)]
    return float(matching_dataset([truth[i] for i in idx], [predictions[i] for i in idx], (0.5,))[0].accuracy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nuclei", help="saved DSB2018 instance model, or a built-in's name")
    args = parser.parse_args(argv)
    if not (DATA / "dsb2018_nuclei").exists():
        print(f"no data at {DATA}: skipped")
        return 0
    from pixlearn.zoo import load_model

    model = load_model(args.model)
    test, groups = load_split(DATA / "dsb2018_nuclei", "test")
    truth = [p.labels for p in test]
    outputs = [np.asarray(apply_model(model, to_grey(p.image), return_probabilities=True)[1]) for p in test]
    stored = stored_thresholds(model.thresholds) or InstanceThresholds()
    results: dict[str, Any] = {"model": args.model, "stored_thresholds": stored.to_dict(),
                               "n_test": len(test)}
    runs: dict[str, tuple[list[np.ndarray], list[dict[str, Any]]]] = {
        "stored": ([instances_from_outputs(o, stored) for o in outputs], [])}
    for name, grid in (("default", DEFAULT_TUNING_GRID), ("wide", WIDE_GRID)):
        runs[f"{name}_cv"] = cross_validated(outputs, truth, grid)
        runs[f"{name}_cv_per_group"] = cross_validated(outputs, truth, grid, groups)
    rows = []
    for name, (predictions, chosen) in runs.items():
        results[f"{name}_ap50"] = ap50(truth, predictions)
        for group in sorted(set(groups)):
            results[f"{name}_ap50_{group}"] = ap50(truth, predictions, groups, group)
        results[f"{name}_chosen"] = chosen
        rows.append((name, results[f"{name}_ap50"], results.get(f"{name}_ap50_colour")))
    results["wide_over_default"] = results["wide_cv_ap50"] / results["default_cv_ap50"]
    results["per_group_over_default"] = results["wide_cv_per_group_ap50"] / results["default_cv_ap50"]
    print_table("DSB2018 test, pooled AP@0.5 (two-fold cross-validated thresholds)", rows,
                headers=("thresholds", "all", "colour"))
    print(f"wide / default grid: {results['wide_over_default']:.3f}x; "
          f"wide per group / default: {results['per_group_over_default']:.3f}x")
    write_results("instance_grid", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
