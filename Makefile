# Every target sets itself up: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export NO_MKDOCS_2_WARNING := 1

# The docs' measured tables and figures: regenerated when the code they measure changes.
GENERATED := docs/assets/generated
MEASURED := $(wildcard alexnet_spec/*.py alexnet_training/*.py alexnet_torch/*.py alexnet_keras/*.py parity/*.py alexnet_cli/*.py)

# make demo's training runs: short (minutes on two cores); docs/training.md has the longer run
DEMO_TRAIN ?= --epochs 2 --batch-size 32 --dropout 0

.PHONY: demo test test-all bench bench-gpu install browser docs docs-serve clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency list changes. torch comes from this machine's disk when it has it.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,test,docs,bench]' -c constraints.txt
	touch $@

# The docs site test (make test-all) opens pages in headless Chromium (Debian's package; CI runs as root).
# Elsewhere point CHROMIUM at any Chromium or Chrome binary.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The docs test needs Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu) or set CHROMIUM=/path/to/chrome." >&2; \
		exit 1; \
	fi

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m parity check --all
	$(PY) -m alexnet_cli.demo
	$(PY) -m parity check --variant cifar --train-step
	$(PY) -m parity check --variant cifar --train-steps 10
	# the cifar network trained on scikit-learn's digits in both frameworks, a short run each
	$(PY) -m alexnet_cli.train --framework torch --variant cifar --data digits $(DEMO_TRAIN) --out build/demo-runs/torch --force
	$(PY) -m alexnet_cli.train --framework keras --variant cifar --data digits $(DEMO_TRAIN) --out build/demo-runs/keras --force
	$(PY) -m alexnet_cli.train plot build/demo-runs/torch build/demo-runs/keras --out build/demo-runs/curves.png --force

# Two tiers, split by the `slow` marker (pyproject.toml). `make test`: the fast tier, every module and
# every command at least once and a cheap proof of each slow family. `make test-all`: everything,
# the Keras-backend children, distributed runs, the docs site in Chromium and ONNX export included;
# what CI runs (.ci/run). Times on two cores: README.md.
test: $(STAMP)
	$(PY) -m pytest -m "not slow"

test-all: $(STAMP) browser
	$(PY) -m pytest

$(GENERATED)/.pitfalls: docs/scripts/pitfalls.py $(MEASURED) | $(STAMP)
	$(PY) docs/scripts/pitfalls.py --out $(GENERATED)
	touch $@

$(GENERATED)/.figures: docs/scripts/figures.py $(MEASURED) | $(STAMP)
	$(PY) docs/scripts/figures.py --out $(GENERATED)
	touch $@

docs: $(GENERATED)/.pitfalls $(GENERATED)/.figures
	$(PY) -m mkdocs build --strict

docs-serve: $(GENERATED)/.pitfalls $(GENERATED)/.figures
	$(PY) -m mkdocs serve

# Every variant in both frameworks, every mode; about ten minutes on two cores. Replaces
# docs/assets/benchmarks.{json,png}. BENCH_ARGS=--quick for a two-minute run.
bench: $(STAMP)
	$(PY) -m benchmarks.run --force $(BENCH_ARGS)

# Training steps per second on this machine's GPU (benchmarks/gpu.py): paper and torchvision, batch 128
# and 256, fp32 and bf16, both frameworks, torchvision's own AlexNet beside them. Keras needs a backend
# that sees the GPU; docs/benchmarks.md "GPU" has the command for a lent GPU machine.
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu --out build/bench-gpu $(BENCH_GPU_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site $(GENERATED)
