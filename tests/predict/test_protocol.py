"""The model contract: a model implementing only :class:`PixelModel` runs through the whole engine,
and the predict room keeps to the protocol (no kind branches, probes, private imports, torch)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

import pixlearn
from pixlearn.data.images import read_image, write_image
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.models.protocol import PixelModel
from pixlearn.postprocess.labels import threshold_probabilities
from pixlearn.predict import PredictOptions, TileConfig, apply_model, predict_many, read_manifest

PREDICT_ROOM = Path(pixlearn.__file__).parent / "predict"


class PlusOne:
    """Only the protocol, pure NumPy: the output is the input plus one (MONAI's ``t + 1``)."""

    kind = "fake"
    task = "restore"
    ndim = 2
    n_channels = 1
    n_outputs = 1
    halo = (0, 0)
    normalization = NormalizeConfig(mode="none")
    size_divisor = 1
    bytes_per_pixel = 16.0
    batches_tiles = True

    def __init__(self, tile_mode: str, task: str = "restore") -> None:
        self.tile_mode = tile_mode
        self.task = task
        self.batches: list[tuple[int, ...]] = []
        self.cores: list[tuple[int, ...]] = []
        self.budget_asked = 0

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        return (image + 1).astype(np.float32)

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        self.batches.append(blocks.shape)
        return self.predict_raw(blocks)

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """Local: the core alone is computed."""
        self.batches.append(blocks.shape)
        self.cores.append((len(blocks),) + tuple(s.stop - s.start for s in inner))
        outputs = self.predict_raw(blocks[(slice(None),) + tuple(inner)])
        return threshold_probabilities(outputs)[..., None].astype(np.float32) if labels else outputs

    def memory_budget_bytes(self) -> float | None:
        self.budget_asked += 1
        return None

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        return ndimage.label(outputs[..., 0] > 1.5)[0]

    def to_metadata(self) -> dict[str, Any]:
        return {"task": self.task}


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def odd_image(rng):
    return rng.random((37, 29, 1)).astype(np.float32)


def test_plus_one_satisfies_protocol():
    assert isinstance(PlusOne("exact"), PixelModel)


@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_apply_model_with_protocol_only_model(odd_image, tile_mode):
    model = PlusOne(tile_mode)
    cfg = TileConfig(tile_shape=(16, 12), overlap=4, batch_size=3)  # mode "auto": the model's
    restored, outputs = apply_model(model, odd_image, tile_cfg=cfg, return_probabilities=True)
    if tile_mode == "exact":  # disjoint cores: every value is computed once
        np.testing.assert_array_equal(outputs, odd_image + 1)
    else:  # weighted averages of equal values
        np.testing.assert_allclose(outputs, odd_image + 1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(restored, odd_image + 1, rtol=1e-6, atol=1e-6)
    assert model.batches and all(len(shape) == 4 for shape in model.batches)  # always batched
    assert max(shape[0] for shape in model.batches) > 1
    # blended tiles overlap, exact ones do not: more tile pixels are predicted when blending
    covered = sum(int(np.prod(shape[:3])) for shape in model.batches)
    assert (covered > odd_image.size) == (tile_mode == "blended")


@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_a_model_taking_one_tile_at_a_time_gets_the_whole_budget_per_tile(rng, tile_mode):
    """batches_tiles false: tiles sized for a batch of one and predicted one by one, same result."""
    image = rng.random((300, 280, 1)).astype(np.float32)
    cfg = TileConfig(memory_budget_mib=0.25, batch_size=4)  # 16 B/px: 16,384 px for the budget
    runs = {}
    for batches in (True, False):
        model = PlusOne(tile_mode)
        model.batches_tiles = batches
        outputs = apply_model(model, image, tile_cfg=cfg, return_probabilities=True)[1]
        np.testing.assert_allclose(outputs, image + 1, rtol=1e-6, atol=1e-6)
        runs[batches] = model.batches
    assert max(shape[0] for shape in runs[True]) > 1 and {shape[0] for shape in runs[False]} == {1}
    largest = {batches: max(int(np.prod(shape[1:3])) for shape in shapes) for batches, shapes in runs.items()}
    assert largest[False] > 2 * largest[True]  # about batch_size times the pixels per tile
    assert largest[False] * 16 <= 0.25 * 2**20 * 1.5  # still within the budget (halo rounding aside)


def test_exact_tiles_compute_each_pixel_once_however_wide_the_halo(odd_image):
    """Exact tiles are read with their halo but only their cores are predicted (predict_core)."""
    model = PlusOne("exact")
    model.halo = (3, 2)
    outputs = apply_model(model, odd_image, tile_cfg=TileConfig(tile_shape=(16, 12), batch_size=2),
                          return_probabilities=True)[1]
    np.testing.assert_array_equal(outputs, odd_image + 1)
    assert sum(int(np.prod(core)) for core in model.cores) == odd_image[..., 0].size
    read = sum(int(np.prod(shape[:3])) for shape in model.batches if shape[1:3] != (1, 1))
    assert read > odd_image[..., 0].size  # the halos were read around the cores


def test_memory_budget_asked_only_without_tile_shape(odd_image):
    model = PlusOne("exact")
    apply_model(model, odd_image)
    assert model.budget_asked == 1
    apply_model(model, odd_image, tile_cfg=TileConfig(tile_shape=(8, 8)))
    apply_model(model, odd_image, tile_cfg=TileConfig(memory_budget_mib=1))
    assert model.budget_asked == 1


@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_instances_decoded_by_the_model(tile_mode):
    image = np.zeros((40, 36, 1), np.float32)
    image[5:15, 5:30] = 1
    image[25:35, 10:14] = 1
    labels = apply_model(PlusOne(tile_mode, task="instances"), image, tile_cfg=TileConfig(tile_shape=(16, 16)))
    assert labels.dtype == np.uint32
    np.testing.assert_array_equal(labels, ndimage.label(image[..., 0] > 0.5)[0])


@pytest.mark.parametrize("output_format", ["tif", "zarr"])
@pytest.mark.parametrize("tile_mode", ["exact", "blended"])
def test_predict_many_with_protocol_only_model(tmp_path, rng, tile_mode, output_format):
    import zarr

    images = [rng.random(shape).astype(np.float32) for shape in ((37, 29), (20, 41))]
    inputs = []
    for i, image in enumerate(images):
        inputs.append(tmp_path / "in" / f"im{i}.tif")
        write_image(inputs[-1], image)
    model = PlusOne(tile_mode)
    out = tmp_path / "out"
    predict_many(model, inputs, out, PredictOptions(tile=TileConfig(tile_shape=(16, 16), overlap=4), output_format=output_format, probabilities=True))
    assert [r["model"] for r in read_manifest(out)] == ["PlusOne", "PlusOne"]
    for i, image in enumerate(images):
        for name in (f"im{i}.{output_format}", f"probabilities/im{i}.{output_format}"):
            if output_format == "zarr":
                result = zarr.open_array(str(out / name), mode="r")[...]
            else:
                result, _ = read_image(out / name)
            np.testing.assert_allclose(np.squeeze(result), image + 1, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ the room's rules


def _predict_modules() -> list[Path]:
    modules = sorted(PREDICT_ROOM.glob("*.py"))
    assert len(modules) >= 10
    return modules


@pytest.mark.parametrize("path", _predict_modules(), ids=lambda p: p.name)
def test_predict_module_keeps_to_the_contract(path):
    source = path.read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pixlearn"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}:{node.lineno} imports private {private} from {node.module}"
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                assert name.split(".")[0] not in ("torch", "sklearn"), f"{path.name}:{node.lineno} imports {name}"
                assert not name.startswith(("pixlearn.classical", "pixlearn.nets")), f"{path.name} imports {name}"
    assert "getattr(model" not in source and ".kind ==" not in source and ".kind !=" not in source


def test_no_module_level_caches_in_predict():
    for path in _predict_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                    assert name not in ("lru_cache", "cache"), f"{path.name}: {node.name} is cached module-wide"


def test_classical_model_loads_and_predicts_without_torch(tmp_path, blobs_2d):
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.models.model_file import save_model

    image, labels = blobs_2d
    model = fit_pixel_classifier([image[..., None]], [(labels > 0).astype(np.int64)], FeatureConfig(sigmas=(1.0,)),
                                 ClassifierConfig(rf=ForestConfig(n_estimators=3, max_depth=4), n_jobs=1, seed=0))
    save_model(model, tmp_path / "model")
    np.save(tmp_path / "image.npy", image[..., None])
    # Part 1: the rooms import without torch. Part 2: with torch made unimportable, as if it were not
    # installed, a classical model loads and predicts. (Not "torch stays out of sys.modules" there:
    # ``import skops.io`` lists every scikit-learn estimator with ``sklearn.utils.all_estimators()``,
    # which walks scikit-learn's vendored ``array_api_compat.torch`` and so imports torch when it is
    # installed; that walk skips a package that fails to import.)
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        import numpy as np
        import pixlearn.models, pixlearn.postprocess, pixlearn.predict
        rooms = sorted(m for m in sys.modules if m.split(".")[0] == "torch")

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        from pixlearn.models.model_file import load_model
        from pixlearn.predict import TileConfig, apply_model
        model = load_model({str(tmp_path / "model")!r})
        labels = apply_model(model, np.load({str(tmp_path / "image.npy")!r}), tile_cfg=TileConfig(tile_shape=(24, 24)))
        print(json.dumps({{"rooms": rooms, "labels": labels.tolist()}}))
    """)
    src = str(Path(pixlearn.__file__).parents[1])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rooms"] == []
    np.testing.assert_array_equal(result["labels"], apply_model(model, image[..., None]))
