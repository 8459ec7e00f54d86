"""The report in a real browser: headless Chromium renders it, logs nothing to the console, loads nothing remote.

Skipped, with the reason shown, where no Chromium is installed; with `CI=true` that fails instead (`.ci/run`
installs Debian's `chromium`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.report import write_report
from tests.browser import HEADLESS_FLAGS
from tests.report_samples import make_metrics, make_mistakes, with_champion

WIDTH, HEIGHT = 1280, 4000
CHROMIUM_FLAGS = (
    *HEADLESS_FLAGS,
    # Nothing may reach the network even if something tried: every host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    reports = tmp_path_factory.mktemp("reports")
    write_report(reports, make_metrics("run-2025-05-30-120000", "2025-05-30T12:00:00+00:00", shift=-0.002), {})
    metrics = with_champion(make_metrics())
    return write_report(reports, metrics, make_mistakes(metrics, limit=12)), metrics


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile; stderr carries its log, console messages included."""
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_lines(stderr: str) -> list[str]:
    """Page console output; the report has no scripts, so any line means something on the page failed."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself (a file:// document) asked the network stack for, from Chromium's NetLog."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and "file://" in str(event.get("params", {}).get("network_isolation_key", ""))
        and not event["params"]["url"].startswith(("file:", "data:"))
    ]


def test_report_renders_in_chromium(chromium: str, report: tuple[Path, dict], tmp_path: Path) -> None:
    from PIL import Image

    path, _ = report
    screenshot, net_log = tmp_path / "report.png", tmp_path / "net-log.json"
    result = run_chromium(
        chromium,
        tmp_path / "profile",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={screenshot}",
        f"--log-net-log={net_log}",
        path.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert console_lines(result.stderr) == []
    assert page_requests(net_log) == []
    with Image.open(screenshot) as image:
        assert image.size == (WIDTH, HEIGHT)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    ink = (pixels.min(axis=2) < 200).mean()
    assert ink > 0.03, f"screenshot nearly blank: {ink:.1%} of pixels not near white"
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    heatmap_blue = ((blue > 100) & (red < 40) & (green < 90)).sum()
    assert heatmap_blue > 500, "no dark blue heatmap cells: the inline images did not render"


def test_report_dom_in_chromium(chromium: str, report: tuple[Path, dict], tmp_path: Path) -> None:
    path, metrics = report
    result = run_chromium(chromium, tmp_path / "profile", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-3000:]
    assert console_lines(result.stderr) == []
    dom = result.stdout
    for section in ("accuracy", "confusion", "per-class", "training", "mistakes", "data", "provenance", "history"):
        assert f'id="{section}"' in dom
    for name in metrics["models"]:
        assert f'id="confusion-{name}"' in dom
    assert dom.count('data-kind="counts"') == len(metrics["models"])


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ('<img src="https://cdn.example.com/logo.png" alt="">', "https://cdn.example.com/logo.png"),
        ('<link rel="stylesheet" href="http://fonts.example.org/x.css">', "http://fonts.example.org/x.css"),
        ("<div style=\"background: url('https://t.example.net/p.gif')\">x</div>", "https://t.example.net/p.gif"),
    ],
)
def test_network_check_catches_a_page_that_loads_something_remote(
    chromium: str, tmp_path: Path, remote: str, url: str
) -> None:
    """The checks above pass on the report; here the same checks, on a page with one remote resource, fail."""
    page = tmp_path / "remote.html"
    page.write_text(f"<!doctype html><html><head><title>t</title></head><body><p>hello</p>{remote}</body></html>")
    net_log = tmp_path / "net-log.json"
    result = run_chromium(chromium, tmp_path / "profile", f"--log-net-log={net_log}", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-3000:]
    assert page_requests(net_log) == [url]
