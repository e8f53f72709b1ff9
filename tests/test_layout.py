"""The house rules of ARCHITECTURE.md, checked: one-way imports between rooms, torch where allowed only."""

from __future__ import annotations

import ast
import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pixlearn

SRC = Path(pixlearn.__file__).resolve().parent
FIXTURES = Path(__file__).parent / "models" / "fixtures" / "v1"

BASE = {"base"}
LOWER = BASE | {"data"}
# room -> the rooms (and single modules) it may import; see ARCHITECTURE.md
ALLOWED: dict[str, set[str]] = {
    "base": BASE,
    "data": LOWER,
    "synthetic": LOWER | {"synthetic"},
    "metrics": LOWER | {"metrics"},
    "postprocess": LOWER | {"metrics", "postprocess"},
    "classical": LOWER | {"metrics", "postprocess", "classical", "models.protocol"},
    "nets": LOWER | {"metrics", "postprocess", "nets", "models.protocol"},
    "predict": LOWER | {"metrics", "postprocess", "predict", "models.protocol"},
    "models": LOWER | {"metrics", "postprocess", "models", "classical", "nets"},
    # the built-in models: found in the package, loaded by the models room's loader
    "zoo": LOWER | {"models", "zoo"},
    # the experiment: one typed section per stage (the config classes of the rooms), read by the app
    "experiment": LOWER | {"classical", "nets", "predict", "models"},
    "app": {"base", "data", "synthetic", "metrics", "postprocess", "classical", "nets", "predict", "models", "app",
            "api", "experiment", "zoo"},
}
TORCH_FREE = {"base", "data", "synthetic", "metrics", "postprocess", "classical", "predict", "zoo"}


def _room(module: str) -> str:
    """``pixlearn.predict.engine`` -> ``predict``; top-level modules are the base (or the API)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__init__":
        return "api"
    if parts[1] in ("config", "errors", "lazy"):
        return "base"
    if parts[1] == "__main__":
        return "app"
    return parts[1]


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, ast.parse(path.read_text(), filename=str(path))))
    return out


def _imports(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """Every imported module (absolute name), its line, and whether it is imported at module level."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in top))
    return found


def _target(module: str) -> str | None:
    if module == "pixlearn":
        return "api"
    if not module.startswith("pixlearn."):
        return None
    if module == "pixlearn.models.protocol":
        return "models.protocol"
    return _room(module)


def test_rooms_import_one_way_only() -> None:
    wrong = []
    for name, tree in _modules():
        room = _room(name)
        if room == "api":
            continue
        for module, line, _ in _imports(tree):
            target = _target(module)
            if target is None or target == room:
                continue
            allowed = ALLOWED[room] | ({"models.protocol"} if "models" in ALLOWED[room] else set())
            if target not in allowed and not (target == "api" and module == "pixlearn"):
                wrong.append(f"{name}:{line} imports {module} ({room} -> {target})")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_torch_is_imported_only_by_nets_and_lazily_by_models_and_app() -> None:
    wrong = []
    for name, tree in _modules():
        room = _room(name)
        for module, line, at_top in _imports(tree):
            if module.split(".")[0] != "torch" and module != "safetensors.torch":
                continue
            if room in TORCH_FREE or room == "api" or (room in ("models", "app") and at_top):
                wrong.append(f"{name}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_is_imported_from_another_module() -> None:
    wrong = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pixlearn"):
                wrong += [f"{name}:{node.lineno} imports {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    assert not wrong, "\n".join(wrong)


_TORCH_FREE_SCRIPT = """
import sys
import numpy as np
import pixlearn, pixlearn.data, pixlearn.classical, pixlearn.predict, pixlearn.postprocess
import pixlearn.metrics, pixlearn.models, pixlearn.synthetic, pixlearn.config
from pixlearn.models.model_file import load_model
from pixlearn.predict import apply_model
model = load_model(sys.argv[1])
labels = apply_model(model, np.load(sys.argv[2]))
assert labels.shape == (48, 48), labels.shape
print("torch" in sys.modules, "skops" in sys.modules)
"""


def test_loading_and_applying_a_classical_model_never_imports_torch(tmp_path: Path) -> None:
    from pixlearn.classical.config import ClassifierConfig, ForestConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier
    from pixlearn.models.model_file import save_model

    image = np.load(FIXTURES / "input.npy")
    model = fit_pixel_classifier([image], [(image[..., 0] > 0.4).astype(np.int64)], FeatureConfig(sigmas=(1.0,)),
                                 ClassifierConfig(rf=ForestConfig(n_estimators=3)))
    path = save_model(model, tmp_path / "rf.zip")
    command = [sys.executable, "-c", _TORCH_FREE_SCRIPT, str(path), str(FIXTURES / "input.npy")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


def test_every_public_name_resolves() -> None:
    for name in pixlearn.__all__:
        assert getattr(pixlearn, name) is not None, name
    assert set(pixlearn.__all__) == {"__version__"} | set(pixlearn._API)  # the list and the map agree
    assert set(pixlearn.__all__) <= set(dir(pixlearn))
    with pytest.raises(AttributeError, match="no_such_thing"):
        pixlearn.no_such_thing  # noqa: B018


def test_public_api_example_runs() -> None:
    import pixlearn.lazy

    results = [doctest.testmod(pixlearn), doctest.testmod(pixlearn.lazy)]
    assert sum(r.attempted for r in results) >= 5 and all(r.failed == 0 for r in results)


@pytest.mark.parametrize("room", ["classical", "data", "nets", "metrics", "postprocess", "predict", "models", "synthetic", "zoo"])
def test_every_room_lists_its_public_names(room: str) -> None:
    import importlib

    module = importlib.import_module(f"pixlearn.{room}")
    assert module.__doc__ and len(module.__doc__.splitlines()[0]) > 20, "a room says what it does"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"pixlearn.{room}.{name}"
