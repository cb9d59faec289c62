# One virtualenv for everything; `make repro` and `make test` create it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned first so that pip does not pull a multi-GB CUDA build where a CPU wheel is at hand.
TORCH  ?= torch==2.13.0

.PHONY: install repro smoke test results clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# dvc.yaml commands call `python`, so the venv must come first on PATH. The run is timed:
# each stage's wall time goes to bench/results/repro_time.json.
repro: install
	PATH="$(abspath $(BIN)):$$PATH" python bench/repro_time.py

# A first look in minutes: every stage on the real data, each model trained for 20 batches and
# evaluated on test_2016_flickr, as a DVC experiment in a temporary copy (the workspace, its
# lock and metrics stay the full run's); `dvc exp show` lists it beside main's results.
SMOKE := -S train.epochs=1 -S train.max_batches=20 -S transformer.train.epochs=1 \
	-S transformer.train.average=1 -S 'evaluate.test_sets=[test_2016_flickr]'
smoke: install
	PATH="$(abspath $(BIN)):$$PATH" dvc exp run --temp $(SMOKE)

test: install
	$(BIN)/ruff check src stages tests bench
	$(BIN)/python -m pytest -q

# The results tables of README.md and docs/results.md, rewritten from metrics/ and results/
# (tests/test_report.py fails while they differ). Commit metrics/ first: the tables name its commit.
results: install
	$(BIN)/python -m nmt.report --write

clean:
	rm -rf $(VENV)
