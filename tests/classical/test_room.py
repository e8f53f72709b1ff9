"""The fronts of the classical and data rooms: every listed name resolves, and no torch comes in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pixlearn.classical
import pixlearn.data


@pytest.mark.parametrize("room", [pixlearn.classical, pixlearn.data])
def test_every_public_name_resolves(room):
    assert room.__doc__ and "Imports" in room.__doc__
    for name in room.__all__:
        assert not name.startswith("_")
        assert getattr(room, name) is not None
    with pytest.raises(AttributeError):
        room.no_such_name  # noqa: B018


def test_classical_and_data_do_not_import_torch():
    code = (
        "import sys, pixlearn.classical as c, pixlearn.data as d\n"
        "[getattr(c, n) for n in c.__all__]; [getattr(d, n) for n in d.__all__]\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pixlearn') and "
        "(m == 'torch' or m.startswith(('pixlearn.nets', 'pixlearn.predict'))))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
