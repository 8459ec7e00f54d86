"""The drawing page in a real headless Chromium against a real `mnist-pipeline app` process: a digit drawn with
real pointer input is answered, the 28x28 picture the model saw is shown, and a correction lands on disk.

Skipped where no Chromium is installed; with `CI=true` that fails instead. A failing page keeps its screenshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.web.feedback import list_corrections
from tests.app_support import promote_constant_model
from tests.browser import Page, open_page
from tests.drawing import ANSWERED, DIGIT_STROKES, canvas_origin, click, draw_digit, touch_stroke
from tests.support import find_free_port, start_process, stop_process, wait_for_http

PAGE_TIMEOUT = 60


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """`mnist-pipeline app` on a free port, its champion a model that always answers 3; (url, data dir, key)."""
    root = tmp_path_factory.mktemp("app-browser")
    data_dir = root / "data"
    key = promote_constant_model(data_dir, 3, "2026-12-01T10:00:00+00:00")
    port = find_free_port()
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "app",
        "--data-dir",
        str(data_dir),
        "--reports-dir",
        str(root / "reports"),
        "--port",
        str(port),
    ]
    log = (root / "app.log").open("w")
    process = start_process(command, env=dict(os.environ), stdout=log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=process)
        yield f"http://127.0.0.1:{port}/", data_dir, key
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(scope="module")
def page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    tmp = tmp_path_factory.mktemp("app-chromium")
    with open_page(chromium, tmp / "profile", 900, 700, tmp / "chromium.log") as tab:
        yield tab


def open_drawing_page(page: Page, url: str) -> None:
    page.call("Page.navigate", url=url)
    assert page.wait_for("document.querySelectorAll('#labels button').length === 10", PAGE_TIMEOUT)


def test_a_drawn_digit_is_answered_and_a_correction_lands(
    page: Page, app_url: tuple[str, Path, str], tmp_path: Path
) -> None:
    url, data_dir, key = app_url
    feedback = DataLayout(data_dir).feedback
    open_drawing_page(page, url)
    draw_digit(page, 7)
    shown = page.wait_for(ANSWERED, PAGE_TIMEOUT)
    assert shown, f"no answer on the page; screenshot {page.screenshot(tmp_path / 'answer.png')}"
    assert shown["answer"] == "3"  # what this champion always says
    assert (shown["previewWidth"], shown["previewHeight"], shown["top3"]) == (28, 28, 3)
    assert f"cnn (key {key}, champion since 2026-12-01T10:00:00+00:00)" in shown["model"]
    before = {path.name for path in list_corrections(feedback)}
    click(page, "#labels button[data-label='7']")
    status = page.wait_for(
        "(s => s.startsWith('saved as a 7') && s)(document.getElementById('status').textContent)", PAGE_TIMEOUT
    )
    assert status == "saved as a 7; 1 correction waiting, a batch goes to the gate at 50", page.screenshot(
        tmp_path / "feedback.png"
    )
    added = [path for path in list_corrections(feedback) if path.name not in before]
    assert [path.parent.name for path in added] == ["7"]


def test_clear_empties_the_page(page: Page, app_url: tuple[str, Path, str]) -> None:
    url, _, _ = app_url
    open_drawing_page(page, url)
    draw_digit(page, 1)
    assert page.wait_for(ANSWERED, PAGE_TIMEOUT)
    click(page, "#clear")
    state = page.evaluate(
        "({answer: document.getElementById('answer').textContent, hidden: document.getElementById('preview').hidden,"
        " ink: Array.from(document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280).data)"
        ".some((value, index) => index % 4 !== 3 && value > 0)})"
    )
    assert state == {"answer": "?", "hidden": True, "ink": False}


def test_a_finger_draws_too(page: Page, app_url: tuple[str, Path, str], tmp_path: Path) -> None:
    url, _, _ = app_url
    page.call("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=1)
    try:
        open_drawing_page(page, url)
        touch_stroke(page, DIGIT_STROKES[1][0], canvas_origin(page))
        shown = page.wait_for(ANSWERED, PAGE_TIMEOUT)
        assert shown, f"no answer to a touch stroke; screenshot {page.screenshot(tmp_path / 'touch.png')}"
        assert (shown["answer"], shown["previewWidth"]) == ("3", 28)
    finally:
        page.call("Emulation.setTouchEmulationEnabled", enabled=False)


KEYS = {"Enter": ("Enter", 13, "\r"), " ": ("Space", 32, " "), "x": ("KeyX", 88, "x"), "u": ("KeyU", 85, "u")}
KEYS |= {str(digit): (f"Digit{digit}", 48 + digit, str(digit)) for digit in range(10)}


def press(page: Page, key: str) -> None:
    """One real key press (down, up) as the keyboard sends it."""
    code, virtual, text = KEYS[key]
    page.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, windowsVirtualKeyCode=virtual, text=text)
    page.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=virtual)


def test_scans_added_with_the_cli_are_reviewed_with_keys_and_survive_a_closed_tab(
    prefect_server: str, page: Page, app_url: tuple[str, Path, str], tmp_path: Path
) -> None:
    """`add-scans` runs the review-intake flow on the test server, as it would on make run's."""
    from tests.increment_support import publish_base
    from tests.predict_support import draw_digits

    url, data_dir, _ = app_url
    layout, _ = publish_base(data_dir, train_rows=100, test_rows=50)
    scans = tmp_path / "scans"
    scans.mkdir()
    for index, digit in enumerate(draw_digits(30, seed=11)[0]):
        Image.fromarray(255 - digit).save(scans / f"scan-{index:02d}.png")
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "add-scans",
        str(scans),
        "--data-dir",
        str(data_dir),
    ]
    added = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert added.returncode == 0 and "queued: 30" in added.stdout and "scored: 30" in added.stdout, added
    page.call("Page.navigate", url=f"{url}review")
    assert page.wait_for("document.body.dataset.current && held.length >= 10", PAGE_TIMEOUT), page.screenshot(
        tmp_path / "review.png"
    )
    assert page.evaluate("held.some((item) => item.audit)"), "no audit image among the first ten handed out"
    first = page.evaluate("held.slice(0, 4).map((item) => item.id)")
    for key in ("Enter", "7", "x", "u", " ", "x"):
        press(page, key)
    shown = page.wait_for("document.body.dataset.reviewed === '5' && roundTrips.length === 6 && roundTrips", 30)
    assert shown, page.screenshot(tmp_path / "keys.png")
    assert sorted(shown)[len(shown) // 2] <= 50, f"round trips per key (ms): {shown}"
    review = layout.review
    assert (layout.reviewed / "3" / f"{first[0]}.png").is_file()  # Enter: the champion's answer, 3
    assert (layout.reviewed / "7" / f"{first[1]}.png").is_file()
    assert (layout.reviewed / "3" / f"{first[2]}.png").is_file()  # x undone, then Space
    assert (review / "unreadable" / f"{first[3]}.png").is_file()
    marks = page.evaluate(
        "[document.querySelectorAll('#strip li.audit-item').length, held.slice(1, 7).filter((i) => i.audit).length,"
        " document.getElementById('audit').hidden, held[0].audit, document.getElementById('counts').textContent]"
    )
    assert marks[:2] == [marks[1], marks[1]] and marks[2] is not marks[3]
    assert marks[4].startswith("reviewed 4 · left 26")
    last = page.evaluate("held[0].id")
    press(page, "5")
    page.call("Page.navigate", url="about:blank")  # the tab goes away at once; its label was sent with keepalive
    deadline = time.monotonic() + 10
    while not (layout.reviewed / "5" / f"{last}.png").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (layout.reviewed / "5" / f"{last}.png").is_file()
