# Two commands do all the set-up on a fresh machine:
#   make benchmark   export the shipped model to every format and print the parity/benchmark table
#   make test        run the test suite
# Both create and use .venv in this folder. MNIST is read from $EDGEDIGITS_DATA
# (default here: ../shared/data/mnist; elsewhere the canonical files are downloaded and verified).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in every resolve that touches it: an unpinned one pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
EDGEDIGITS_DATA ?= $(abspath ../shared/data/mnist)
export EDGEDIGITS_DATA

.PHONY: setup benchmark test ship train clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)" -e ".[dev,onnx2tf]"
	# onnx2tf 1.29.x (the last line for Python 3.11) pins old versions: install it beside TF 2.21 without them.
	$(BIN)/pip install -q --no-deps onnx2tf==1.29.24
	touch $@

setup: $(BIN)/.installed

benchmark: setup
	$(BIN)/edgedigits export --out runs/export
	$(BIN)/edgedigits benchmark --out runs/export

test: setup
	$(BIN)/pytest -q

# Re-export the shipped model into models/cnn and refresh its benchmark report.
ship: setup
	$(BIN)/edgedigits export
	$(BIN)/edgedigits benchmark

# The shipped models' recipes.
train: setup
	$(BIN)/edgedigits train --model cnn --out runs/cnn
	$(BIN)/edgedigits train --model cnn-tiny --out runs/cnn-tiny

clean:
	rm -rf runs .pytest_cache
