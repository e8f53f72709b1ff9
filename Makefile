# pixlearn: the two quick-start commands are `make demo` and `make test`.
#
# TORCH is the PyTorch requirement installed before pixlearn. The default is the CPU build that
# pip finds on this kind of machine. GPU users: install your CUDA build of torch into the venv first
# and run `make demo TORCH=` (empty: keep the torch that is there), or name another spec.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixlearn-installed
DEMO_OUT ?= demo_output
DEMO_ARGS ?=
PYTEST_ARGS ?=
# What napari's window needs on a bare Debian machine, and a virtual screen for its tests.
GUI_APT := xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
           libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xinput0 libxkbcommon-x11-0 \
           libgl1 libegl1 libfontconfig1 libdbus-1-3 libglib2.0-0
XVFB = $(if $(shell command -v xvfb-run),xvfb-run -a,)

.PHONY: install gui-deps demo test fuzz lint bench screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)"; fi
	$(BIN)/python -m pip install -q -e ".[nets,dev,gui,exchange,openvino]"
	@touch $(STAMP)

# System libraries for the GUI tests: installed when missing and we may (root with apt-get);
# elsewhere the GUI tests skip with the reason.
gui-deps:
	@if ! command -v xvfb-run >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(GUI_APT) >/dev/null; fi

demo: $(STAMP)
	$(BIN)/pixlearn demo --output $(DEMO_OUT) $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

test: $(STAMP) gui-deps lint
	$(XVFB) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The long fuzz, property and kill -9 runs (seeded, bounded), which CI runs after the tests.
fuzz: $(STAMP) gui-deps
	$(XVFB) $(BIN)/python -m pytest -q --runslow -m fuzz $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

screenshots: $(STAMP) gui-deps
	$(XVFB) $(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist src/*.egg-info
