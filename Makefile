# Two commands from a fresh clone: `make run` and `make test`. Both create/refresh .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on the lock and the project file: an unchanged stack skips the install.
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
RUN_ARGS ?=
TEST_ARGS ?=

.PHONY: install run test lint bench server serve clean

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(BIN)/mnist-pipeline run $(RUN_ARGS)

test: install
	$(BIN)/python -m pytest $(TEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/bench_ingest.py
