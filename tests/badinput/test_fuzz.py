"""Model-file fuzzing: random byte flips of a valid tiny model only ever raise ModelFileError."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput.crafting import fit_tiny_classical, fit_tiny_object_classifier
from pixlearn.errors import PixlearnError
from pixlearn.models.model_file import load_model, save_model


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    return save_model(fit_tiny_classical("rf", 2), tmp_path_factory.mktemp("fz") / "m.zip").read_bytes()


@pytest.fixture(scope="module")
def object_model_bytes(tmp_path_factory):
    return save_model(fit_tiny_object_classifier(), tmp_path_factory.mktemp("fz") / "o.zip").read_bytes()


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out)


def _check(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz.zip"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_model(path)
        except PixlearnError:
            pass  # ModelFileError (a PixlearnError) is the only acceptable failure


_FLIPS = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_FLIPS)
def test_byte_flips_raise_only_model_file_errors(tmp_path, model_bytes, flips):
    _check(tmp_path, _flip(model_bytes, flips))


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_FLIPS)
def test_object_classifier_byte_flips_raise_only_model_file_errors(tmp_path, object_model_bytes, flips):
    _check(tmp_path, _flip(object_model_bytes, flips))


@pytest.mark.slow
@pytest.mark.fuzz
@settings(max_examples=2000, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_FLIPS)
def test_byte_flips_long_run(tmp_path, model_bytes, flips):
    _check(tmp_path, _flip(model_bytes, flips))
