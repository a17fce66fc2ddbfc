# Quick start: `make run` opens the app, `make test` runs the whole suite headless.
# Both create .venv on first use. TORCH pins the build pip takes: on these machines
# torch==2.13.0 is a CPU wheel on local disk; an open range could pull a multi-GB CUDA build.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv lint clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,cluster]" "$(TORCH)"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/decode_latency.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/ui_latency.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/explorer_latency.py

clean:
	rm -rf $(VENV) build *.egg-info artifacts
