# Every target sets itself up: a fresh machine needs only python3 (3.10+) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency list changes. torch comes from this machine's disk when it has it.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,test,bench]' -c constraints.txt
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m parity check --all

test: $(STAMP)
	$(PY) -m pytest

# Every variant in both frameworks, every mode; about ten minutes on two cores. Replaces
# docs/assets/benchmarks.{json,png}. BENCH_ARGS=--quick for a two-minute run.
bench: $(STAMP)
	$(PY) -m benchmarks.run --force $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
