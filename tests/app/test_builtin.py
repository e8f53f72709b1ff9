"""The built-in models on the command line: pixlearn models, info and predict by name, train --init."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pixlearn.app import builtin
from pixlearn.app.cli import app
from pixlearn.data.images import read_labels, write_image
from pixlearn.metrics import matching
from pixlearn.synthetic import SyntheticConfig, make_nuclei
from pixlearn.zoo import builtin_model

runner = CliRunner()


def _run(*args):
    """Exit code and output (stdout and stderr, as the runner mixes them)."""
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output


def _nuclei_folder(root, n, shape=(96, 96), seed=5):
    """`n` synthetic nuclei images and their instance labels, as files."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    truth = []
    for i in range(n):
        image, labels = make_nuclei(SyntheticConfig(shape=shape), rng)
        write_image(root / "images" / f"im{i}.tif", image.astype(np.uint16))
        write_image(root / "labels" / f"im{i}.tif", labels.astype(np.uint16))
        truth.append(labels)
    return root, truth


def test_doctests() -> None:
    result = doctest.testmod(builtin)
    assert result.attempted > 0 and result.failed == 0


def test_models_lists_every_field_of_the_card() -> None:
    card = builtin_model("nuclei").card
    result, out = _run("models")
    assert result.exit_code == 0, out
    for text in ("nuclei", card["task"], card["trained_on"], card["licence"], f"ap50 {card['scores']['ap50']:.3g}",
                 "MiB", "pixlearn predict nuclei"):
        assert text in out, text
    result, out = _run("models", "--json")
    assert result.exit_code == 0, out
    listed = json.loads(out)
    assert listed[0]["name"] == "nuclei" and listed[0]["scores"] == card["scores"] and listed[0]["size_bytes"] > 0


def test_info_shows_the_card_beside_the_usual_description() -> None:
    result, out = _run("info", "nuclei")
    assert result.exit_code == 0, out
    description = json.loads(out)
    assert description["model_card"]["licence"] == builtin_model("nuclei").card["licence"]
    assert description["kind"] == "network" and "weights.safetensors" in description["files"]


def test_predict_with_the_builtin_model_and_no_training(tmp_path, one_torch_thread) -> None:
    data, truth = _nuclei_folder(tmp_path / "d", 1, shape=(128, 128), seed=0)
    result, out = _run("predict", "nuclei", data / "images", "-o", tmp_path / "pred", "--threads", "1")
    assert result.exit_code == 0, out
    predicted = read_labels(tmp_path / "pred" / "im0.tif")
    assert matching(truth[0], predicted, thresh=0.5).accuracy > 0.3


def test_an_unknown_model_name_is_one_line_and_exit_2(tmp_path) -> None:
    (tmp_path / "im.tif").write_bytes(b"")
    result, out = _run("predict", "nucleii", tmp_path / "im.tif", "-o", tmp_path / "pred")
    assert result.exit_code == 2 and "no built-in model of that name" in out
    assert len(out.strip().splitlines()) == 1, out


def test_train_init_fine_tunes_the_builtin_model(tmp_path, one_torch_thread) -> None:
    data, truth = _nuclei_folder(tmp_path / "d", 3)
    config = tmp_path / "short.yaml"
    config.write_text("train: {epochs: 1, steps_per_epoch: 3, batch_size: 2, patch_shape: [64, 64], val_patches: 4,"
                      " init_lr_factor: 0.1}\n")
    result, out = _run("train", "--init", "nuclei", "--images", data / "images", "--labels", data / "labels",
                       "--config", config, "-o", tmp_path / "tuned.zip", "--threads", "1")
    assert result.exit_code == 0, out
    assert "fine-tuned from nuclei" in out
    header = json.loads(_run("info", tmp_path / "tuned.zip")[1])
    model = header["model"]
    assert model["unet"] == json.loads(_run("info", "nuclei")[1])["model"]["unet"]  # the same architecture
    assert model["normalization"]["polarity"] == "bright-objects"  # its normalisation kept
    assert model["train"]["lr"] == pytest.approx(1e-4) and header["experiment"]["normalization"]["polarity"] == "bright-objects"
    result, out = _run("predict", tmp_path / "tuned.zip", data / "images", "-o", tmp_path / "pred")
    assert result.exit_code == 0, out
    assert matching(truth[0], read_labels(tmp_path / "pred" / "im0.tif"), thresh=0.5).accuracy > 0.3


def test_train_init_refuses_what_does_not_fit(tmp_path) -> None:
    data, _ = _nuclei_folder(tmp_path / "d", 2, shape=(64, 64))
    common = ("--images", data / "images", "--labels", data / "labels", "-o", tmp_path / "m.zip")
    unet = tmp_path / "unet.yaml"
    unet.write_text("unet: {ndim: 2, in_channels: 1, out_channels: 2, depth: 2, base_channels: 4}\n")
    cases = [
        (("--init", "nuclei", "--method", "rf"), "--init starts from a network; use --method unet"),
        (("--init", "nuclei", "--task", "semantic"), "trained for instances; fine-tuning keeps its task"),
        (("--init", "nuclei", "--config", unet), "keeps the initial model's architecture, but the given unet differs in depth 2"),
        (("--init", "no-such-model"), "--init: no-such-model: no such model file or folder, and no built-in model"),
    ]
    for args, message in cases:
        result, out = _run("train", *args, *common)
        assert result.exit_code == 2 and message in out, (args, out)
        assert len(out.strip().splitlines()) == 1, out
    assert not (tmp_path / "m.zip").exists()


def test_a_classical_model_cannot_start_a_network(tmp_path, blobs_2d) -> None:
    import pixlearn
    from pixlearn.classical.features import FeatureConfig

    image, labels = blobs_2d
    rf = pixlearn.fit_pixel_classifier([image[..., None]], [(labels > 0).astype(np.int64)], FeatureConfig(sigmas=(1.0,)))
    pixlearn.save_model(rf, tmp_path / "rf.zip")
    data, _ = _nuclei_folder(tmp_path / "d", 2, shape=(64, 64))
    result, out = _run("train", "--init", tmp_path / "rf.zip", "--images", data / "images", "--labels",
                       data / "labels", "-o", tmp_path / "m.zip")
    assert result.exit_code == 2 and "a classical model; fine-tuning starts from a network model" in out, out


def test_the_config_files_normalization_section_replaces_the_models(tmp_path) -> None:
    from types import SimpleNamespace

    from pixlearn.data.normalize import NormalizeConfig
    from pixlearn.experiment import ExperimentConfig

    init = SimpleNamespace(normalization=NormalizeConfig(polarity="bright-objects"))
    plain, given = tmp_path / "plain.yaml", tmp_path / "given.json"
    plain.write_text("train: {epochs: 1}\n")
    given.write_text(json.dumps({"normalization": {"pmax": 99.0}}))
    assert builtin.fine_tune_experiment(ExperimentConfig(), None, init).normalization == init.normalization
    assert builtin.fine_tune_experiment(ExperimentConfig(), plain, init).normalization == init.normalization
    experiment = ExperimentConfig.from_file(given)
    assert builtin.fine_tune_experiment(experiment, given, init).normalization == NormalizeConfig(pmax=99.0)
