"""``pixlearn doctor``: models validated and images opened without predicting; exit 0 or 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from badinput.crafting import edit_tree, fit_tiny_classical, tiny_image, with_estimator, with_header
from pixlearn.app.cli import app
from pixlearn.app.doctor import diagnose
from pixlearn.data.images import write_image
from pixlearn.models.model_file import save_model

FIXTURES = Path(__file__).resolve().parents[1] / "models" / "fixtures" / "v1"
runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_model(fit_tiny_classical("rf", 2), tmp_path_factory.mktemp("doc") / "rf.zip")


def _doctor(*paths):
    result = runner.invoke(app, ["doctor", *(str(p) for p in paths)])
    return result.exit_code, result.output


def test_valid_model_and_images_exit_0(tmp_path, model):
    write_image(tmp_path / "imgs" / "a.tif", tiny_image())
    np.save(tmp_path / "imgs" / "b.npy", tiny_image())
    (tmp_path / "imgs" / "notes.txt").write_text("x")
    code, out = _doctor(model, tmp_path / "imgs")
    assert code == 0, out
    assert "classical model" in out and "loads and validates" in out
    assert "a.tif: image (24, 20) float32" in out and "b.npy" in out
    assert "notes.txt: not an image file" in out
    assert "0 would be refused" in out
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["a.tif", "b.npy", "notes.txt"]  # nothing written


def test_network_model_checked_with_shapes(tmp_path):
    code, out = _doctor(FIXTURES / "unet_instances_v1.zip")
    assert code == 0, out
    assert "network model, task instances" in out


@pytest.mark.parametrize("attack, fragment", [
    (lambda src, dst: with_estimator(src, dst, edit_tree("left_child", -1, 10**6)), "child index"),
    (lambda src, dst: with_header(src, dst, lambda h: h["model"].update(n_channels=10**9)), "n_channels"),
])
def test_crafted_model_refused_exit_2(tmp_path, model, attack, fragment):
    bad = attack(model, tmp_path / "bad.zip")
    code, out = _doctor(bad)
    assert code == 2, out
    assert "REFUSED" in out and fragment in out


def test_crafted_unet_refused(tmp_path):
    bad = with_header(FIXTURES / "unet_instances_v1.zip", tmp_path / "bad.zip",
                      lambda h: h["model"]["unet"].update(kernel_size=99))
    code, out = _doctor(bad)
    assert code == 2 and "kernel_size" in out, out


def test_bad_images_reported_per_file(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_image(folder / "good.tif", tiny_image())
    bad = tiny_image()
    bad[2, 2] = np.nan
    np.save(folder / "nan.npy", bad)
    np.save(folder / "complex.npy", tiny_image().astype(np.complex64))
    np.save(folder / "empty.npy", np.zeros((0, 4), np.float32))
    (folder / "garbage.tif").write_bytes(b"not a tiff")
    report = diagnose([folder])
    by_name = {Path(f.path).name: f for f in report.findings}
    assert by_name["good.tif"].ok
    assert not by_name["nan.npy"].ok and "NaN or Inf" in by_name["nan.npy"].what
    assert not by_name["complex.npy"].ok and "complex" in by_name["complex.npy"].what
    assert not by_name["empty.npy"].ok and "no pixels" in by_name["empty.npy"].what
    assert not by_name["garbage.tif"].ok and "cannot read" in by_name["garbage.tif"].what
    assert not report.ok
    code, out = _doctor(folder)
    assert code == 2 and "4 would be refused" in out, out


def test_huge_lazy_image_checked_by_header_only(tmp_path):
    import zarr

    zarr.open_array(str(tmp_path / "big.zarr"), mode="w", shape=(200000, 200000), chunks=(64, 64), dtype="uint8")
    zarr.open_array(str(tmp_path / "bomb.zarr"), mode="w", shape=(2**20, 2**20), chunks=(64, 64), dtype="uint8")
    report = diagnose([tmp_path / "big.zarr", tmp_path / "bomb.zarr"])
    big, bomb = report.findings
    assert big.ok and "tile by tile" in big.what
    assert not bomb.ok and "more than the limit" in bomb.what


def test_images_checked_against_the_model(tmp_path, model):
    np.save(tmp_path / "stack.npy", np.stack([tiny_image()] * 5))  # a stack: predicted plane by plane
    code, out = _doctor(model, tmp_path / "stack.npy")
    assert code == 0 and "0 would be refused" in out, out
    np.save(tmp_path / "narrow.npy", np.stack([tiny_image()[:, :6]] * 5))  # 6-pixel "planes": not a stack
    code, out = _doctor(model, tmp_path / "narrow.npy")
    assert code == 2 and "2D images" in out, out


def test_missing_path_and_fifo(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.tif")
    code, out = _doctor(tmp_path / "absent.tif", tmp_path / "pipe.tif")
    assert code == 2 and "no such file" in out and "FIFO" in out, out


def test_doctor_and_image_checks_never_import_torch(tmp_path):
    # (loading a classical model without torch is the loader's promise: tests/test_layout.py)
    import subprocess

    np.save(tmp_path / "a.npy", tiny_image())
    code = ("import sys; from pixlearn.app.doctor import diagnose; "
            f"r = diagnose([{str(tmp_path / 'a.npy')!r}]); assert r.ok, r.lines(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    src = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": src, "PATH": ""})
    assert result.returncode == 0, result.stderr
