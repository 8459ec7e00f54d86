"""Test-wide isolation: every test session gets its own PREFECT_HOME and quiet TensorFlow."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.modeling.hardware import enable_onednn_where_it_helps
from tests.browser import require_chromium
from tests.support import find_free_port, make_synthetic_digits, start_process, stop_process, wait_for_http

_PREFECT_HOME = tempfile.mkdtemp(prefix="mnist-pipeline-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
# The API URL is fixed before Prefect is imported anywhere: settings snapshots taken at import time (and handed
# to task-runner subprocesses) then point at the test server that `prefect_server` starts on this port.
_SERVER_PORT = find_free_port()
os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_SERVER_PORT}/api"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's kernels as the pipeline's own processes choose them, in every test process and its children: weights
# compared across processes come from the same kernels.
enable_onednn_where_it_helps()


# Modules that need no Prefect server but train, build or export real models (TensorFlow's import alone is seconds),
# import TensorFlow in subprocesses, or race real processes and servers: e2e, so the unit tier stays under a minute.
E2E_MODULES = frozenset(
    {
        "test_app_api",
        "test_app_server",
        "test_augmentation",
        "test_bench_training",
        "test_best_profile",
        "test_concurrency_store",
        "test_evaluation",
        "test_models",
        "test_predict_cli",
        "test_predict_engine",
        "test_quiet_start",
        "test_resume",
        "test_toy_model",
        "test_training",
    }
)


# Modules without a unit test: every test in them uses the Prefect server or Chromium, or the module is in
# E2E_MODULES. `make test-fast` does not even import them (several import TensorFlow or Prefect at the top: seconds
# of each worker's collection); a full run fails at once if one of them gains a unit test.
NO_UNIT_MODULES = E2E_MODULES | {
    "test_app_browser",
    "test_app_gate",
    "test_champion_cli",
    "test_concurrency_runs",
    "test_dask_address",
    "test_deployment",
    "test_flow",
    "test_flow_sets",
    "test_hostile_predict",
    "test_hostile_ui_browser",
    "test_increments_flow",
    "test_predict_flow",
    "test_report_browser",
    "test_ui_browser",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With `-m unit` (`make test-fast`), skip the modules that hold no unit test."""
    if config.getoption("markexpr") == "unit" and collection_path.stem in NO_UNIT_MODULES:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers by what a test uses, unless it is marked itself: `browser` (headless Chromium), `e2e` (a real Prefect
    server, or a slow module of E2E_MODULES), else `unit`. `make test` runs all three; `make test-fast` only unit."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        module = item.module.__name__.rpartition(".")[2]
        if not any(item.get_closest_marker(tier) for tier in ("unit", "e2e", "browser")):
            if "chromium" in fixtures:
                item.add_marker(pytest.mark.browser)
            elif "prefect_server" in fixtures or module in E2E_MODULES:
                item.add_marker(pytest.mark.e2e)
            else:
                item.add_marker(pytest.mark.unit)
        if module in NO_UNIT_MODULES and item.get_closest_marker("unit"):
            raise pytest.UsageError(f"{item.nodeid}: a unit test in a module listed in NO_UNIT_MODULES (conftest)")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on a free loopback port with its own PREFECT_HOME; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    env = {**os.environ, "PREFECT_HOME": str(home)}
    # The UI (a JavaScript app) asks this URL for its data; its default assumes port 4200.
    env["PREFECT_UI_API_URL"] = env.pop("PREFECT_API_URL")
    # A run waiting for a deployment's concurrency slot tries again after 5 s instead of 30.
    env["PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"] = "5"
    log = (home / "server.log").open("w")
    process = start_process(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(_SERVER_PORT)],
        env=env,
        stdout=log,
    )
    api_url = os.environ["PREFECT_API_URL"]
    try:
        wait_for_http(f"{api_url}/health", timeout=120, process=process)
        yield api_url
    finally:
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()
        stop_process(process)
        log.close()
        shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


# One chart cache for the whole run, shared by the xdist workers (they inherit it from the controller, whose
# conftest is imported first); removed by the process that made it.
if "MNIST_PIPELINE_TEST_CHART_CACHE" not in os.environ:
    os.environ["MNIST_PIPELINE_TEST_CHART_CACHE"] = tempfile.mkdtemp(prefix="mnist-pipeline-test-charts-")
_UNIT_CHART_CACHE = os.environ["MNIST_PIPELINE_TEST_CHART_CACHE"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(_UNIT_CHART_CACHE, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Unit tests render the same sample metrics many times: each chart is drawn for real once per run, by the real
    code, and later renders of the same inputs read it from the chart cache (`charts.cache_charts_in`, keyed by the
    inputs and the drawing code), as a re-run's report does. The cache spans the whole test, setup included, so a
    module fixture that renders a report fills and reads it too. A test that opens its own cache (the tests of the
    cache itself) overrides this one; e2e and browser tests get no shared cache."""
    charts = sys.modules.get("mnist_pipeline.report.charts")  # importing it here would import matplotlib's users
    if charts is None or item.get_closest_marker("unit") is None:
        return (yield)
    with charts.cache_charts_in(Path(_UNIT_CHART_CACHE)):
        return (yield)


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small learnable MNIST-shaped dataset as an .npz source (1200 train / 300 test)."""
    path = tmp_path_factory.mktemp("synthetic") / "digits.npz"
    x_train, y_train = make_synthetic_digits(1200, seed=1)
    x_test, y_test = make_synthetic_digits(300, seed=2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium's binary: skipped where none is installed, except in CI (`CI=true`), where that fails."""
    return require_chromium()
