PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow bench clean demo

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test,image,eval,codecs]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

demo: $(STAMP)
	$(PY) scripts/demo.py --out demo-output

bench: $(STAMP)
	$(PY) benchmarks/bench_coding.py
	$(PY) benchmarks/bench_train.py --threads 1
	$(PY) benchmarks/bench_codec.py --threads 1

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
