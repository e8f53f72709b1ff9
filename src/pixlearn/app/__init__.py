"""The faces of pixlearn: the ``pixlearn`` command line, the jobs it runs, the demo, figures.

:mod:`pixlearn.app.cli` is a thin typer layer: each subcommand parses its options, calls one
job or library function, and turns a :class:`pixlearn.errors.PixlearnError` into one line and
exit code 2. :mod:`pixlearn.app.jobs` trains from folders, :mod:`pixlearn.app.demo` runs the
end-to-end demo on synthetic nuclei (its instance part, random-forest components against an
instance U-Net, in :mod:`pixlearn.app.demo_instances`), :mod:`pixlearn.app.figures` draws result
panels. This is the only room that may import every other room; nothing imports it. Heavy
imports (torch, matplotlib) happen inside the commands, so ``pixlearn --help`` is fast.
"""
