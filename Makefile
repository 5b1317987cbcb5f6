# The README's two quick-start commands live here: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

LAB_STATE ?= $(or $(LAB_STATE_DIR),/tmp/gpu-kata-lab)

.PHONY: setup compile lab run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Bytecode written once, as an installed copy has it: with PYTHONDONTWRITEBYTECODE set (as this
# machine's shells have it) every process would otherwise compile the tree again.
compile: setup
	$(BIN)/python -m compileall -q -x 'tests/fixtures/hosts/' installer screens remote tests bench

# The lab: Debian packages, the control plane built once per machine (cached), then up.
lab: setup
	PYTHON=$(BIN)/python bash tests/lab/ensure.sh
	$(BIN)/python -m tests.lab up

# Quick start 1: the wizard on the lab (a simulated GPU cluster), pre-filled for it.
run: lab compile
	PATH="$$($(BIN)/python -c 'import json;print(json.load(open("$(LAB_STATE)/lab.json"))["path"])'):$$PATH" \
	    $(BIN)/gpu-kata-installer --wizard --answers $(LAB_STATE)/answers.yaml

# ruff, then the import contract in pyproject.toml (layers, no textual in the core, no circles).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Quick start 2: the whole test suite (CI runs exactly this through .ci/run).
test: setup lint compile
	PYTHON=$(BIN)/python bash tests/lab/ensure.sh
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
