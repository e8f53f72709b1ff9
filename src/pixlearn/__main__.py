"""``python -m pixlearn``: the same as the ``pixlearn`` command."""

from .cli import app

app(prog_name="pixlearn")
