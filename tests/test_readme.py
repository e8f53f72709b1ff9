"""The README's Python examples run as written (in a scratch folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path, one_torch_thread, capsys) -> None:
    if "fit_network" in BLOCKS[index] or 'load_model("nuclei")' in BLOCKS[index]:  # networks need torch
        pytest.importorskip("torch")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(BLOCKS[index], f"README.md example {index + 1}", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.split()
    assert printed, "every example prints its score"
    assert float(printed[-1]) >= 0.0  # a score came out
