# Every target sets itself up: the first run creates .venv and installs the
# project with its development extras from PyPI; later runs reinstall only
# when pyproject.toml changes. Nothing outside this folder is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UNIT   ?=
PARAMS ?=
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_ARGS ?=
FORMAL_ARGS ?=
MUTATE_ARGS ?=

TARGET := $(if $(UNIT),$(UNIT) $(PARAMS),--all)

.PHONY: all setup verilog test test-full synth lint bench clean distclean help traces evidence formal mutate report

all: verilog

help:
	@echo "make verilog [UNIT=name PARAMS='A=1 B=2']  emit Verilog into build/verilog/"
	@echo "make test                                  golden + co-simulation tests (fast set)"
	@echo "make test-full                             everything, slow sweeps included, fresh seeds (SEED=random)"
	@echo "make synth [UNIT=... PARAMS=...]           area reports into build/synth/"
	@echo "make lint [UNIT=... PARAMS=...]            verilator --lint-only -Wall"
	@echo "make bench                                 benchmarks and reports into build/reports/"
	@echo "make traces                                digits DiT: DDIM-50 activation traces into build/traces/"
	@echo "make evidence                              RADiT/Ditto/ORBIS measured on the DiT: build/reports/evidence.md"
	@echo "make formal [FORMAL_ARGS='name --depth N']  SymbiYosys proofs of hdl/**/*_formal.py: build/formal/summary.md"
	@echo "make mutate [MUTATE_ARGS='--seed N --count N --unit U']  mutation score: build/mutate/report.md"
	@echo "make report                                one HTML page of the reports in build/reports/: index.html"
	@echo "make clean | distclean                     remove build/ | build/ and .venv/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP)

verilog: $(STAMP)
	$(BIN)/ditgen emit $(TARGET) --out build/verilog

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not slow" $(PYTEST_ARGS)

# make test keeps the seeds derived from the test names (deterministic);
# make test-full draws a fresh seed for every randomised testbench unless
# SEED is given, and a failure prints its seed and the replay command.
test-full: $(STAMP)
	@echo "test-full: SEED=$${SEED:-random}; replay a failure with: SEED=<seed> make test PYTEST_ARGS=\"-k <test>\""
	SEED=$${SEED:-random} $(BIN)/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

synth: $(STAMP)
	$(BIN)/ditgen synth $(TARGET) --jobs $(JOBS) --out build/synth

lint: $(STAMP)
	$(BIN)/ditgen lint $(TARGET) --out build/lint

bench: $(STAMP)
	$(BIN)/ditgen bench --out build/reports

traces: $(STAMP)
	$(BIN)/python -m workloads.traces --out build/traces

evidence: $(STAMP)
	$(BIN)/ditgen bench evidence --out build/reports

formal: $(STAMP)
	$(BIN)/python -m sim.formal $(FORMAL_ARGS)

mutate: $(STAMP)
	$(BIN)/python -m sim.mutate $(MUTATE_ARGS)

report: $(STAMP)
	$(BIN)/python -m reports.index --out build/reports

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
