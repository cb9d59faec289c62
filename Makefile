# One virtualenv for everything; `make repro` and `make test` create it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned first so that pip does not pull a multi-GB CUDA build where a CPU wheel is at hand.
TORCH  ?= torch==2.13.0

.PHONY: install repro test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# dvc.yaml commands call `python`, so the venv must come first on PATH. The run is timed:
# each stage's wall time goes to metrics/repro_time.json.
repro: install
	PATH="$(abspath $(BIN)):$$PATH" python bench/repro_time.py

test: install
	$(BIN)/ruff check src stages tests bench
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV)
