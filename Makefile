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

TARGET := $(if $(UNIT),$(UNIT) $(PARAMS),--all)

.PHONY: all setup verilog test test-full synth lint bench clean distclean help traces evidence report

all: verilog

help:
	@echo "make verilog [UNIT=name PARAMS='A=1 B=2']  emit Verilog into build/verilog/"
	@echo "make test                                  golden + co-simulation tests (fast set)"
	@echo "make test-full                             everything, slow sweeps included"
	@echo "make synth [UNIT=... PARAMS=...]           area reports into build/synth/"
	@echo "make lint [UNIT=... PARAMS=...]            verilator --lint-only -Wall"
	@echo "make bench                                 benchmarks and reports into build/reports/"
	@echo "make traces                                digits DiT: DDIM-50 activation traces into build/traces/"
	@echo "make evidence                              RADiT/Ditto/ORBIS measured on the DiT: build/reports/evidence.md"
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

test-full: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

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

report: $(STAMP)
	$(BIN)/python -m reports.index --out build/reports

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
