# Quick start: `make demo` (install + main job), `make test` (install + lint + tests on both backends).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Offline machines: point FLOWS_WEIGHTS_DIR at a folder holding the official RAFT .pth files.
# A ../shared/weights/raft folder beside the checkout is used when present.
export FLOWS_WEIGHTS_DIR ?= $(abspath $(wildcard ../shared/weights/raft))
PYTEST_ARGS ?=

.PHONY: install demo flow-demo lint test test-tensorflow test-jax benchmarks

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The main job: AVLAE on the embedded sprites dataset (no download but the RAFT-small weights).
demo: install
	KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} $(PY) scripts/train.py --flagfile=demo.flags --workdir=out/demo

flow-demo: install
	mkdir -p out
	KERAS_BACKEND=jax $(PY) scripts/flow_demo.py --out=out/flow_demo.png

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-tensorflow: install
	@echo "=== tests on TensorFlow ==="
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q --durations=10 $(PYTEST_ARGS)

test-jax: install
	@echo "=== tests on JAX ==="
	KERAS_BACKEND=jax $(PY) -m pytest -q --durations=10 $(PYTEST_ARGS)

# Both backends side by side: most of a test's time is single-threaded (XLA compiles, Python),
# so two sessions fill the two cores. Each session's report is printed whole when it finishes.
test: lint
	@echo "Testing on TensorFlow and JAX side by side; each report follows when its run ends."
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-tensorflow test-jax
