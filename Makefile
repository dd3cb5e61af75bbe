# Two commands a new user needs: `make test` and `make demo` (see README).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned, so nothing resolves an unpinned (CUDA) build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# ruff on everything; mypy on the core and generation layers (files in pyproject's [tool.mypy])
lint: $(STAMP)
	$(VENV)/bin/ruff check ardm tests benchmarks
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/ardm demo --out runs/demo

clean:
	rm -rf $(VENV) runs build *.egg-info
