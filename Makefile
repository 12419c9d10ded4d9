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

.PHONY: setup benchmark test ship train clean fonts dist pi-check
# Debian fonts for train/negatives.py (printed digits and text, handwriting-style letters and signs);
# kept in step with negatives.FONT_PACKAGES.
FONTS := fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35 fonts-dkg-handwriting \
	fonts-breip fonts-rufscript fonts-humor-sans fonts-comic-neue fonts-dancingscript fonts-kristi \
	fonts-bwht fonts-tlwg-purisa-ttf fonts-tomsontalks fonts-sjfonts

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)" -e ".[dev,onnx2tf]"
	# onnx2tf 1.29.x (the last line for Python 3.11) pins old versions: install it beside TF 2.21 without them.
	$(BIN)/pip install -q --no-deps onnx2tf==1.29.24
	# tflite-support: the official TFLite metadata schema (export) and reader (tests). Its Task Library
	# pins protobuf<4; the metadata part needs only flatbuffers (and libusb-1.0, see DEBS).
	$(BIN)/pip install -q --no-deps tflite-support==0.4.4
	touch $@

setup: $(BIN)/.installed

benchmark: setup fonts
	$(BIN)/edgedigits export --out runs/export
	$(BIN)/edgedigits benchmark --out runs/export

test: setup fonts web
	$(BIN)/pytest -q

# The web app (web/, docs/web.md): its npm packages, pinned by web/package-lock.json, and Debian's
# chromium (with Node.js/npm where missing) for the browser tests (tests/test_web*.py).
.PHONY: web
web: web/node_modules/.package-lock.json
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

web/node_modules/.package-lock.json: web/package-lock.json web/package.json
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	cd web && npm ci --ignore-scripts --no-audit --no-fund

# Re-export the shipped model into models/cnn and refresh its benchmark report.
ship: setup fonts
	$(BIN)/edgedigits export
	$(BIN)/edgedigits benchmark

# The wheel and sdist (shipped models inside) in dist/, checked with twine.
dist: setup
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The runtime on arm64 Debian bookworm (64-bit Raspberry Pi OS) under qemu, compared with x86;
# writes docs/raspberry-pi.md. Needs root and the network (apt, pip); the arm64 root is cached.
pi-check: dist
	nice -n 10 bash pi/check.sh

# The shipped models' recipes.
train: setup
	$(BIN)/edgedigits train --model cnn --out runs/cnn
	$(BIN)/edgedigits train --model cnn-tiny --out runs/cnn-tiny

# Other Debian packages the tests need: tflite-support's metadata extensions link libusb-1.0.
DEBS := libusb-1.0-0

fonts:
	@if ! dpkg -s $(FONTS) $(DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(FONTS) $(DEBS) >/dev/null; \
	fi

# The shipped 11-class model ("none" = not a handwritten digit), in two steps (about 25 minutes):
# cnn-mnist fine-tuned on synthetic marks (runs/cnn-none), then on the marks that the reader cuts
# from synthetic pages written with MNIST training digits, other words and print than the test
# pages' (their letters, words, signs and print, read by runs/cnn-none; runs/cnn-none-pages,
# shipped as models/cnn). The harvest depends on the reader: the shipped weights are this recipe
# at commit d99ec06 (docs/training.md).
train-none: setup fonts
	$(BIN)/edgedigits train --model cnn --init models/cnn-mnist --distill 3 --negatives 40000 --epochs 20 \
		--min-epochs 20 --lr 0.001 --out runs/cnn-none
	$(BIN)/edgedigits export --weights runs/cnn-none --format onnx_int8
	$(BIN)/edgedigits synth-pages runs/synth-train-1 --pages 300 --seed 1 --digits train
	$(BIN)/edgedigits synth-pages runs/synth-train-2 --pages 300 --seed 2 --digits train
	$(BIN)/edgedigits harvest runs/synth-train-1 runs/synth-train-2 --none-only \
		--model runs/cnn-none/model_int8.onnx --out runs/synth-train-marks.npz
	$(BIN)/edgedigits train --model cnn --init runs/cnn-none --distill 3 --negatives 40000 --epochs 6 \
		--min-epochs 6 --lr 0.001 --photo-marks runs/synth-train-marks.npz --photo-repeat 4 \
		--out runs/cnn-none-pages

# The comparisons behind docs/theory.md, 3 seeds each (about 1.5 hours of CPU on 2 cores; run it
# again to resume: finished runs are skipped). Reports in runs/theory/NAME/report.md.
COMPARE := nice -n 10 $(BIN)/edgedigits compare
.PHONY: theory
theory: setup
	$(COMPARE) --vary activation=relu,leaky_relu,prelu,elu --out runs/theory/activation
	$(COMPARE) --vary loss=mse,hinge,huber --out runs/theory/loss
	$(COMPARE) --vary pool=avg,gap --out runs/theory/pool
	$(COMPARE) --vary batchnorm=off --out runs/theory/batchnorm
	$(COMPARE) --vary optimizer=sgd --out runs/theory/optimizer
	$(COMPARE) --vary dropout=0,0.5 --out runs/theory/dropout
	$(COMPARE) --vary weight_decay=0 --out runs/theory/weight_decay
	$(COMPARE) --vary l1=0.00005 --out runs/theory/l1
	$(COMPARE) --set model=mlp --vary hidden=128,256 --out runs/theory/mlp-hidden
	$(COMPARE) --set optimizer=sgd --vary lr=0.05 --out runs/theory/sgd-lr

clean:
	rm -rf runs .pytest_cache

# The long fuzz run (issue 10): hostile images, mutated models, labels.csv/metadata/predict input,
# seeded and replayable (FUZZ_SEED); counts by outcome, exit 1 on any crash, hang, page over the
# time bound (1 s CPU per MP) or uncaught exception. About 15 minutes on one core.
.PHONY: fuzz
FUZZ_SEED ?= 0
fuzz: setup
	$(BIN)/edgedigits fuzz --images 10000 --models 1000 --text 10000 --seed $(FUZZ_SEED)
