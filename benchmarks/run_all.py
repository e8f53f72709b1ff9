"""Run every benchmark under benchmarks/ (each a script with a main()), one after the other.

Every ``benchmarks/*.py`` not starting with ``_`` is one: apply, builtin (the built-in ``nuclei``
model per DSB2018 group, and fine-tuning it on colour images), classify, instance_grid (the instance
post-processing grids, cross-validated on DSB2018), interactive, networks,
pixel_classifier, scaling (prediction time and peak memory against image size, Dask
``local:1`` vs ``local:2``), train_throughput, vnc_rf, vnc_unet. A new script is picked up without a
change here. ``vnc_unet.py`` (the U-Net on the same stack, beside the forest) merges its ``vnc3d_*``
keys into ``results/networks.json``, which networks.py keeps. ``vnc_rf.py`` (a random forest on the
real ssTEM stack of ``shared/data``, under ``--memory 2GiB``)
and ``pixel_classifier.py`` both merge their keys into ``results/pixel_classifier.json``; a
benchmark whose data is missing says so and is skipped.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    # networks.py quotes the training throughput measured by train_throughput.py: run it last
    scripts.sort(key=lambda p: p.name == "networks.py")
    failed = []
    for script in scripts:
        print(f"\n##### {script.name}", flush=True)
        start = time.perf_counter()
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                failed.append(script.name)
        except Exception as exc:  # keep going: one broken benchmark must not hide the others
            print(f"{script.name} failed: {exc!r}", flush=True)
            failed.append(script.name)
        print(f"##### {script.name}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
