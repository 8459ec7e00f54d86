"""Run history in the Prefect UI, in a real browser: a small flow run against the real test server, then headless
Chromium loads the run's artifact pages of the Prefect UI and must show the pictures, and the `mnist-report` link
must return the report from the web app (a real `mnist-pipeline app` process).

Skipped where no Chromium is installed; with `CI=true` that fails instead. A failing page keeps its screenshot.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Page, open_page
from tests.support import find_free_port, start_process, stop_process

WIDTH, HEIGHT = 1280, 1400
PAGE_TIMEOUT = 120
MODELS = ["ann_no_hidden", "ann_hidden_100"]
# Every artifact of the run together, as the Prefect database stores them: "well under 1 MB".
ARTIFACT_BUDGET = 400_000
RENDERED_IMAGES = """Array.from(document.images)
  .filter(image => image.src.startsWith('data:image/png;base64,') && image.complete && image.naturalWidth > 0)
  .map(image => ({alt: image.alt, width: image.clientWidth, height: image.clientHeight}))"""


def wait_for_port(port: int, timeout: float, process: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"web app exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"web app did not listen on {port} within {timeout} s")


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The web app on a free loopback port, serving a fresh reports dir (runs find it via MNIST_REPORT_URL)."""
    reports = tmp_path_factory.mktemp("ui-reports")
    port = find_free_port()
    log = (reports.parent / "web-app.log").open("w")
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "app",
        "--reports-dir",
        str(reports),
        "--data-dir",
        str(reports.parent / "ui-app-data"),
        "--port",
        str(port),
    ]
    process = start_process(command, env=dict(os.environ), stdout=log)
    try:
        wait_for_port(port, 60, process)
        yield reports, f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(scope="module")
def ui_run(
    prefect_server: str,
    report_server: tuple[Path, str],
    synthetic_npz: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """`mnist-pipeline run` with two models (1 epoch, 600 images) reporting into the served dir, as a user runs it."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    reports, base = report_server
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "run",
        "--source",
        f"npz:{synthetic_npz}",
        "--models",
        ",".join(MODELS),
        "--epochs",
        *[f"{name}=1" for name in MODELS],
        "--train-limit",
        "600",
        "--data-dir",
        str(tmp_path_factory.mktemp("ui-data")),
        "--reports-dir",
        str(reports),
    ]
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MNIST_REPORT_URL": base}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    metrics = json.loads(Path(printed["metrics"]).read_text())
    flow_run_id = metrics["run"]["flow_run_id"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {"metrics": metrics, "printed": printed, "artifacts": {artifact.key: artifact for artifact in artifacts}}


@pytest.fixture(scope="module")
def page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    tmp = tmp_path_factory.mktemp("ui-chromium")
    with open_page(chromium, tmp / "profile", WIDTH, HEIGHT, tmp / "chromium.log") as tab:
        yield tab


def count_inline_images(markdown: str) -> int:
    return len(re.findall(r"!\[[^\]]*\]\(data:image/png;base64,", markdown))


def artifact_url(prefect_api: str, artifact_id: Any) -> str:
    return f"{prefect_api.removesuffix('/api')}/artifacts/artifact/{artifact_id}"


def test_cli_prints_the_flow_run_page_of_the_ui(ui_run: dict[str, Any], prefect_server: str) -> None:
    flow_run_id = ui_run["metrics"]["run"]["flow_run_id"]
    assert ui_run["printed"]["flow run"] == f"{prefect_server.removesuffix('/api')}/flow-runs/flow-run/{flow_run_id}"


def test_run_publishes_pictures_under_stable_keys_within_budget(ui_run: dict[str, Any]) -> None:
    artifacts = ui_run["artifacts"]
    picture_keys = {"mnist-accuracy", "mnist-accuracy-trend", "mnist-model-ann-no-hidden", "mnist-model-ann-hidden-100"}
    assert picture_keys <= set(artifacts)
    assert count_inline_images(artifacts["mnist-accuracy"].data) == 1
    assert count_inline_images(artifacts["mnist-accuracy-trend"].data) == 1
    for name in MODELS:
        # Counts, row-normalised, training curves, mistakes strip (600 synthetic images leave some mistakes).
        data = artifacts[f"mnist-model-{name.replace('_', '-')}"].data
        assert count_inline_images(data) >= 3, name
    total = sum(len(str(artifact.data)) for artifact in artifacts.values())
    assert total < ARTIFACT_BUDGET, f"the run's artifacts hold {total} bytes"


@pytest.mark.parametrize(
    "key", ["mnist-accuracy", "mnist-accuracy-trend", "mnist-model-ann-no-hidden", "mnist-model-ann-hidden-100"]
)
def test_prefect_ui_shows_the_pictures(
    key: str, ui_run: dict[str, Any], page: Page, prefect_server: str, tmp_path: Path
) -> None:
    artifact = ui_run["artifacts"][key]
    expected = count_inline_images(artifact.data)
    page.call("Page.navigate", url=artifact_url(prefect_server, artifact.id))
    rendered = page.wait_for(
        f"(() => {{ const found = {RENDERED_IMAGES}; return found.length >= {expected} && found; }})()", PAGE_TIMEOUT
    )
    if not rendered:
        shot = page.screenshot(tmp_path / f"{key}.png")
        pytest.fail(f"{key}: expected {expected} rendered images on the artifact page, found none; screenshot {shot}")
    shot = tmp_path / f"{key}.png"
    assert len(rendered) == expected, f"screenshot {page.screenshot(shot)}"
    # Readable: each picture shows at a real size inside the page's content column, not a thumbnail.
    assert all(300 <= image["width"] <= WIDTH and image["height"] >= 80 for image in rendered), (
        rendered,
        f"screenshot {page.screenshot(shot)}",
    )


def test_report_link_opens_the_report_over_http(
    ui_run: dict[str, Any], page: Page, prefect_server: str, report_server: tuple[Path, str], tmp_path: Path
) -> None:
    _, base = report_server
    run_name = ui_run["metrics"]["run"]["name"]
    artifact = ui_run["artifacts"]["mnist-report"]
    # Prefect stores a link artifact as the markdown `[text](url)`.
    url = f"{base}/reports/runs/{run_name}/report.html"
    assert artifact.data == f"[report {run_name}]({url})"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert run_name in response.read().decode("utf-8")
    page.call("Page.navigate", url=artifact_url(prefect_server, artifact.id))
    found = page.wait_for(f"document.querySelectorAll('a[href=\"{url}\"]').length", PAGE_TIMEOUT)
    assert found, f"no link to the report on the artifact page; screenshot {page.screenshot(tmp_path / 'link.png')}"
    page.evaluate(f"document.querySelector('a[href=\"{url}\"]').removeAttribute('target')")
    page.evaluate(f"document.querySelector('a[href=\"{url}\"]').click()")
    opened = page.wait_for(
        "location.href.startsWith('http://127.0.0.1') && !!document.getElementById('accuracy') && location.href",
        PAGE_TIMEOUT,
    )
    assert opened == url, f"the report did not open; screenshot {page.screenshot(tmp_path / 'report.png')}"
    # Each model's reliability diagram and risk-coverage curve, drawn (issue 30).
    shown = page.wait_for(
        "(shown => shown.length === " + str(len(MODELS)) + " && shown)("
        "Array.from(document.querySelectorAll('img.chart.trust'))"
        ".filter(image => image.complete && image.naturalWidth > 600).map(image => image.dataset.model))",
        PAGE_TIMEOUT,
    )
    assert sorted(shown or []) == sorted(MODELS), f"screenshot {page.screenshot(tmp_path / 'trust.png')}"
