# One virtualenv for everything; `make repro` and `make test` create it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned first so that pip does not pull a multi-GB CUDA build where a CPU wheel is at hand.
TORCH  ?= torch==2.13.0

.PHONY: install lock browser repro smoke test results clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Exact versions of everything but torch (pinned above: its wheel differs by machine, a CPU
# build here, a CUDA build from PyPI elsewhere); `make lock` refreshes them from the ranges
# in pyproject.toml, which stay for installing the package into an environment of one's own.
LOCK := requirements.lock

$(VENV)/.installed: $(BIN)/activate pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet "$(TORCH)"
	.venv-lock/bin/pip install --quiet -e ".[dev]"
	{ echo "# make lock: pyproject.toml's ranges resolved on $$(date -u +%F) with $$(.venv-lock/bin/python -V); torch: TORCH in the Makefile"; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^torch=='; } > $(LOCK)
	rm -rf .venv-lock

install: $(VENV)/.installed

# dvc.yaml commands call `python`, so the venv must come first on PATH. The data stages run
# once, then each architecture's stages in a lane of their own, side by side as the cores allow
# (nmt.lanes); each stage's start and end go to bench/results/repro_time.json. ARCHS="gru
# attention": only those architectures' lanes.
repro: install
	PATH="$(abspath $(BIN)):$$PATH" python -m nmt.lanes $(if $(ARCHS),--archs $(ARCHS))

# A first look in minutes: every stage on the real data, each model trained for 20 batches and
# evaluated on test_2016_flickr, as a DVC experiment in a temporary copy (the workspace, its
# lock and metrics stay the full run's); `dvc exp show` lists it beside main's results.
# ARGS="-S model.hid_dim=1024": a quick look at a change, the same way.
SMOKE := -S train.epochs=1 -S train.max_batches=20 -S transformer.train.epochs=1 \
	-S transformer.train.average=1 -S 'evaluate.test_sets=[test_2016_flickr]'
smoke: install
	PATH="$(abspath $(BIN)):$$PATH" dvc exp run --temp $(SMOKE) $(ARGS)

# The attention explorer's test drives the distribution's Chromium (tests/test_serve.py).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "make: no /usr/bin/chromium and no apt-get: install Chromium and ChromeDriver at /usr/bin, then rerun"; exit 1; \
	  fi; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

test: install browser
	$(BIN)/ruff check src stages tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The results tables of README.md and docs/results.md, rewritten from metrics/ and results/
# (tests/test_report.py fails while they differ). Commit metrics/ first: the tables name its commit.
results: install
	$(BIN)/python -m nmt.report --write

clean:
	rm -rf $(VENV)
