"""``python -m pixlearn``: the same as the ``pixlearn`` command (also under ``torchrun -m pixlearn``)."""

from pixlearn.app.cli import app

if __name__ == "__main__":  # not when a process started with "spawn" imports this module again
    app(prog_name="pixlearn")
