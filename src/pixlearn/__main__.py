"""``python -m pixlearn``: the same as the ``pixlearn`` command."""

from pixlearn.app.cli import app

app(prog_name="pixlearn")
