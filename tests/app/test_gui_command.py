"""``pixlearn gui`` as a typer command, and the rule that only app/napari imports Qt (no Qt needed)."""

from __future__ import annotations

import ast
from pathlib import Path

import typer
from typer.testing import CliRunner

import pixlearn
from pixlearn.app.gui import gui

SRC = Path(pixlearn.__file__).resolve().parent


def test_gui_command_parses_and_refuses_missing_files(tmp_path: Path, monkeypatch) -> None:
    app = typer.Typer()
    app.command()(gui)
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "images" in result.output.lower()
    opened = []
    monkeypatch.setattr("pixlearn.app.gui.open_viewer", lambda images: opened.append(images))
    result = CliRunner().invoke(app, [str(tmp_path / "missing.tif")])
    assert result.exit_code == 1 and "no such file" in result.output
    assert opened == []
    monkeypatch.setitem(__import__("sys").modules, "napari", None)  # as if the gui extra were missing
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1 and "pixlearn[gui]" in result.output


def test_only_the_napari_room_imports_qt() -> None:
    qt = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt", "napari", "magicgui")
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if "app/napari" in path.as_posix() or path.name == "gui.py":
            continue  # gui.py imports napari inside the command only
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            wrong += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in qt]
    assert not wrong, wrong


def test_the_napari_package_imports_without_qt() -> None:
    import importlib

    module = importlib.import_module("pixlearn.app.napari")
    assert (Path(module.__file__).parent / "napari.yaml").exists()
