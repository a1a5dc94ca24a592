# The two commands of the README: `make train` and `make test`. Both create the venv if needed.
VENV    ?= .venv
PY      := $(VENV)/bin/python
TORCH   := torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.gan_runner-installed
FMNIST  := /usr/share/datasets/fashion-mnist

.PHONY: setup dataset chromium train test test-slow lint clean device-prep

setup: $(STAMP)

# Reuses an existing venv and torch (the CUDA wheel is ~5.6 GB): only a changed pyproject or
# setup.py reinstalls the project itself.
$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '2.14.1')" 2>/dev/null \
		|| $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	@$(MAKE) --no-print-directory dataset chromium
	@touch $@

# Debian's Fashion-MNIST when we are root on a Debian-like system; elsewhere the dataset
# options explain the alternatives (dataset.root=DIR or dataset.download=true).
dataset:
	@if [ ! -d $(FMNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "note: could not install dataset-fashion-mnist; use dataset.download=true"; fi

# Debian's chromium for tests/test_report_html.py (headless: it opens report.html and takes a
# screenshot); without it, and without root to install it, those tests are skipped.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "note: could not install chromium; tests/test_report_html.py will be skipped"; fi

# Without Debian's copy of Fashion-MNIST, torchvision downloads it (to ~/.cache/gan_runner).
train: setup
	$(VENV)/bin/gan-train $$([ -d $(FMNIST) ] || echo dataset.download=true) $(ARGS)

test: setup
	$(PY) -m pytest -q

# End-to-end runs (real processes, a wheel build, a sweep); CI runs them after `make test`.
test-slow: setup
	$(PY) -m pytest -q -m slow; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

lint: setup
	$(VENV)/bin/ruff check gan_runner tests scripts setup.py
	$(VENV)/bin/lint-imports

# What scripts/device_check.sh needs on a GPU machine that reaches no network: wheels of the
# pure-Python packages its image lacks (the versions of this venv) and Fashion-MNIST. Name .whl
# and .device in the device run's carry (docs/speed.md).
device-prep: setup
	$(PY) -m pip wheel -q --no-deps -w .whl $$($(PY) -m pip freeze | grep -iE '^(hydra-core|omegaconf|antlr4-python3-runtime)==')
	@mkdir -p .device && cp -r $(FMNIST) .device/fashion-mnist
	@du -sh .whl .device

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
