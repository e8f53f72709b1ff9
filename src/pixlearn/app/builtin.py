"""Built-in models on the command line: ``pixlearn models``, and the model ``train --init`` starts from.

:func:`models` is a typer-compatible command that :mod:`pixlearn.app.cli` registers; it lists
the models of :mod:`pixlearn.zoo` with their cards. :func:`initial_model`, :func:`fine_tune_choices`
and :func:`fine_tune_experiment` turn ``pixlearn train --init MODEL`` into the network to start
from, the method and task it implies, and the experiment it trains with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from pixlearn.errors import PixlearnError


def _scores_line(scores: Mapping[str, Any]) -> str:
    """``ap50 0.599, ap75 0.383 (dsb2018 test, 100 images)`` of a card's scores."""
    numbers = [f"{key} {value:.3g}" for key, value in scores.items()
               if isinstance(value, float) and not isinstance(value, bool)]
    counts = [f"{key.removesuffix('_images').replace('_', ' ')}, {value} images" for key, value in scores.items()
              if key.endswith("_images") and isinstance(value, int)]
    return ", ".join(numbers) + (f" ({'; '.join(counts)})" if counts else "")


def _groups_line(scores: Mapping[str, Any]) -> str | None:
    """``grey-small 0.626 (49), ...`` of per-group AP@0.5 scores, if the card has them."""
    groups = scores.get("ap50_by_group")
    if not isinstance(groups, dict) or not groups:
        return None
    return ", ".join(f"{name} {g.get('ap50', float('nan')):.3g} ({g.get('images', '?')})"
                     for name, g in groups.items() if isinstance(g, dict))


def card_lines(name: str, card: Mapping[str, Any], size_bytes: int) -> list[str]:
    """What ``pixlearn models`` prints for one built-in model.

    Examples
    --------
    >>> card = {"task": "instances", "summary": "Nuclei.", "trained_on": "DSB2018", "licence": "CC0",
    ...         "input": "2D", "scores": {"test_images": 3, "ap50": 0.5}}
    >>> print("\\n".join(card_lines("nuclei", card, 2 * 1024 * 1024)))
    nuclei  (instances, 2.0 MiB)
      Nuclei.
      trained on  DSB2018
      licence     CC0
      input       2D
      scores      ap50 0.5 (test, 3 images)
      use         pixlearn predict nuclei IMAGES -o OUT   |   pixlearn train --init nuclei ...
    """
    lines = [f"{name}  ({card.get('task', '?')}, {size_bytes / 2**20:.1f} MiB)", f"  {card.get('summary', '')}"]
    for label, key in (("trained on", "trained_on"), ("licence", "licence"), ("input", "input")):
        lines.append(f"  {label:<11} {card.get(key, '?')}")
    scores = card.get("scores")
    if isinstance(scores, dict):
        lines.append(f"  {'scores':<11} {_scores_line(scores)}")
        groups = _groups_line(scores)
        if groups:
            lines.append(f"  {'by group':<11} {groups}")
    lines.append(f"  {'use':<11} pixlearn predict {name} IMAGES -o OUT   |   pixlearn train --init {name} ...")
    return lines


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the model cards as JSON.")] = False,
) -> None:
    """List the built-in models: name, task, what each was trained on, licence, scores and size.

    Use one by name wherever a model is asked for (a file or folder of that name wins):
    `pixlearn predict nuclei IMAGES -o OUT`, `pixlearn info nuclei`, `pixlearn train --init nuclei ...`.
    """
    from pixlearn.zoo import builtin_models

    found = builtin_models()
    if as_json:
        typer.echo(json.dumps([{**m.card, "size_bytes": m.size_bytes} for m in found], indent=2))
        return
    if not found:
        typer.echo("no built-in models in this installation")
    for index, model in enumerate(found):
        typer.echo(("\n" if index else "") + "\n".join(card_lines(model.name, model.card, model.size_bytes)))


def initial_model(source: str, device: str | None) -> Any:
    """The network that ``train --init SOURCE`` starts from (a model file or folder, or a built-in name).

    Raises
    ------
    PixlearnError
        `source` is neither, or holds a classical model.
    """
    from pixlearn.zoo import load_model

    try:
        model = load_model(source, device=device)
    except PixlearnError as exc:
        raise PixlearnError(f"--init: {exc}") from None
    if model.kind != "network":
        raise PixlearnError(f"--init {source}: a {model.kind} model; fine-tuning starts from a network model")
    return model


def fine_tune_choices(method: str | None, task: str | None, init: Any) -> tuple[str, str]:
    """The method and task of ``pixlearn train``: the defaults (rf, semantic), or with `init`
    (``--init``) unet and the initial model's task; a conflicting choice is refused.

    Examples
    --------
    >>> fine_tune_choices(None, None, None)
    ('rf', 'semantic')
    """
    if init is None:
        return method or "rf", task or "semantic"
    if method not in (None, "unet"):
        raise PixlearnError(f"--method {method}: --init starts from a network; use --method unet (or leave it out)")
    if task not in (None, init.task):
        raise PixlearnError(f"--task {task}: the --init model was trained for {init.task}; fine-tuning keeps its task")
    return "unet", init.task


def _file_sections(config: Path | None) -> set[str]:
    """The sections a ``--config`` file gives (read after :class:`ExperimentConfig` accepted it)."""
    if config is None:
        return set()
    text = config.read_text()
    data = json.loads(text) if config.suffix.lower() == ".json" else yaml.safe_load(text)
    return set(data) if isinstance(data, dict) else set()


def fine_tune_experiment(experiment: Any, config: Path | None, init: Any) -> Any:
    """`experiment` for fine-tuning `init`: its normalisation the model's, unless the ``--config``
    file gives a ``normalization`` section (a ``unet`` section must equal the model's, which
    :func:`pixlearn.nets.fit.fit_network` checks)."""
    if "normalization" in _file_sections(config):
        return experiment
    return experiment.replace(normalization=init.normalization)


__all__ = ["card_lines", "fine_tune_choices", "fine_tune_experiment", "initial_model", "models"]
