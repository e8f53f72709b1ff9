"""Outputs never destroy inputs or foreign files; every failure goes through one error path."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from badinput.crafting import tiny_image
from pixlearn.app import cli
from pixlearn.app.cli import app
from pixlearn.data.images import read_image, write_image
from pixlearn.models.model_file import load_model, read_header
from pixlearn.predict import read_manifest

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        image = np.roll(tiny_image(i), 3 * i, axis=1)
        np.save(tmp_path / "images" / f"a{i}.npy", image)
        write_image(tmp_path / "labels" / f"a{i}.tif", (image > 0.5).astype(np.uint8))
    return tmp_path


def _train(data, output, *extra):
    return runner.invoke(app, ["train", "--images", str(data / "images"), "--labels", str(data / "labels"),
                               "-o", str(output), "--n-estimators", "2", "--sigmas", "1", *extra])


@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_overwrite_replaces_only_a_pixlearn_model(data, name):
    target = data / name
    assert _train(data, target).exit_code == 0
    created = read_header(target)["created"]
    refused = _train(data, target, "--n-estimators", "3")
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert read_header(target)["created"] == created  # untouched
    import time

    time.sleep(1.1)  # "created" has a resolution of one second
    replaced = _train(data, target, "--n-estimators", "3", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert read_header(target)["created"] != created  # the old model is gone
    assert load_model(target).estimator.n_estimators == 3  # the new one loads
    assert sorted(p.name for p in data.iterdir()) == sorted(["images", "labels", name])  # no temporaries


def test_empty_folder_is_a_fine_target(data):
    (data / "m").mkdir()
    assert _train(data, data / "m").exit_code == 0
    assert load_model(data / "m").kind == "classical"


def test_predict_output_inside_input_folder_is_not_read_back(data, tmp_path):
    assert _train(data, tmp_path / "model").exit_code == 0
    out = data / "images" / "pred"
    for _ in range(2):  # the rerun lists images/ again: its own outputs are not inputs
        result = runner.invoke(app, ["predict", str(tmp_path / "model"), str(data / "images"), "-o", str(out),
                                     "--format", "tif"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a0.tif", "a1.tif", "manifest.jsonl"]
    assert [r["input"] for r in read_manifest(out)] == [str(data / "images" / f"a{i}.npy") for i in range(2)]
    result = runner.invoke(app, ["predict", str(tmp_path / "model"), str(data / "images" / "*"), "-o", str(out)])
    assert result.exit_code == 0, result.output  # a pattern over the input folder skips the output folder too


def test_predict_into_input_folder_refused_and_inputs_intact(data, tmp_path):
    assert _train(data, tmp_path / "model").exit_code == 0
    before = {p.name: p.read_bytes() for p in (data / "images").iterdir()}
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(app, ["predict", str(tmp_path / "model"), str(data / "images"), "-o",
                                     str(data / "images"), *extra])
        assert result.exit_code == 2 and "contains the input" in result.output, result.output
    assert {p.name: p.read_bytes() for p in (data / "images").iterdir()} == before


def test_garbage_at_an_output_path_is_never_finished(data, tmp_path):
    assert _train(data, tmp_path / "model").exit_code == 0
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "model"), str(data / "images"), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    good = read_image(out / "a0.tif")[0]
    (out / "a0.tif").write_bytes(b"garbage")  # damaged after pixlearn wrote it (it is in the manifest)
    assert runner.invoke(app, args).exit_code == 0
    np.testing.assert_array_equal(read_image(out / "a0.tif")[0], good)  # redone, not kept as finished


def test_internal_error_is_one_line_exit_1_traceback_only_verbose(data, tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("pixlearn.app.jobs.train_classical_model", bug)
    result = _train(data, tmp_path / "m")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: internal error (RuntimeError: boom second line)")
    assert "--verbose" in lines[0] and "Traceback" not in result.output
    result = _train(data, tmp_path / "m", "--verbose")
    assert result.exit_code == 1 and "Traceback" in result.output and "report it" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--images", "x"], "Missing option"),
    (["predict", "--magic"], "No such option"),
    (["info"], "Missing argument"),
    (["doctor"], "Missing argument"),
    (["predict", "m", "i", "-o", "o", "--threads", "-2"], "--threads: Invalid value"),
])
def test_usage_errors_are_one_line_exit_2(argv, fragment):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.output


def test_error_path_is_written_once():
    import inspect

    source = inspect.getsource(cli)
    assert "_guard" not in source and "except PixlearnError" not in source
    assert source.count("traceback.print_exc()") == 2 and source.count("sys.exit(") == 1


def test_output_renamed_before_its_finished_line_is_still_pixlearns(data, tmp_path):
    """A run killed between renaming an output into place and appending its finished line: the
    claim line written before the run started names it, so the rerun redoes it; a foreign file at
    another output path is still refused."""
    assert _train(data, tmp_path / "model").exit_code == 0
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "model"), str(data / "images"), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    good = read_image(out / "a1.tif")[0]
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert '"claimed"' in lines[0] and len(lines) == 3
    (out / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")  # a1 finished, its line never written
    assert [r["input"] for r in read_manifest(out)] == [str(data / "images" / "a0.npy")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out / "a1.tif")[0], good)
    assert [r["input"] for r in read_manifest(out)] == [str(data / "images" / f"a{i}.npy") for i in range(2)]
    other = tmp_path / "other"
    other.mkdir()
    (other / "a0.tif").write_bytes(b"the user's")
    refused = runner.invoke(app, ["predict", str(tmp_path / "model"), str(data / "images"), "-o", str(other)])
    assert refused.exit_code == 2 and "not written by pixlearn" in refused.output
    assert (other / "a0.tif").read_bytes() == b"the user's" and not (other / "manifest.jsonl").exists()
