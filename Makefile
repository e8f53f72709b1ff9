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
PYTEST_ARGS ?=

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)"; fi
	$(BIN)/python -m pip install -q -e ".[nets,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pixlearn demo --output $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist src/*.egg-info
