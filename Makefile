# The README's two quick-start commands live here: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Quick start 1: the product on its embedded default.
run: setup
	$(BIN)/gpu-kata-installer --answers installer/examples/answers.yaml \
	    --facts installer/examples/facts.yaml --dry-run

lint: setup
	$(BIN)/ruff check .

# Quick start 2: the whole test suite (CI runs exactly this through .ci/run).
test: setup lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
