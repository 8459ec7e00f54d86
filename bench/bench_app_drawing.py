"""Does the champion read digits drawn on the page? Headless Chromium draws 0-9 as polylines with real pointer
input on `mnist-pipeline app`, against DATA_DIR's champion (from `make run`), and each answer is recorded.

The strokes and the page driving are the browser tests' own (tests/drawing.py, tests/browser.py), so the script
runs from the repository root. Prints one JSON object; exits 1 when fewer than 9 of the 10 are read right.

    python bench/bench_app_drawing.py --data-dir data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package, for its Chromium driver and digit strokes

from tests.browser import find_chromium, open_page  # noqa: E402
from tests.drawing import ANSWERED, DIGIT_STROKES, click, draw_digit  # noqa: E402
from tests.support import find_free_port  # noqa: E402

NEEDED = 9


def wait_for_app(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mnist-pipeline app exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}healthz", timeout=2) as response:
                if json.load(response)["champion"]:
                    return
                raise RuntimeError("the data dir has no cnn champion: run `make run` first")
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="data dir with a cnn champion")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("bench_app_drawing: expected Chromium (chromium on PATH), found none", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-app-drawing-"))
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [str(Path(sys.executable).with_name("mnist-pipeline")), "app", "--data-dir", str(args.data_dir)]
    command += ["--reports-dir", str(work / "reports"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers = {}
    try:
        wait_for_app(url, process)
        with open_page(chromium, work / "profile", 900, 700, work / "chromium.log") as page:
            page.call("Page.navigate", url=url)
            page.wait_for("document.querySelectorAll('#labels button').length === 10", 60)
            for digit in DIGIT_STROKES:
                click(page, "#clear")
                draw_digit(page, digit)
                shown = page.wait_for(ANSWERED, 60)
                answers[digit] = {"answer": int(shown["answer"]), "top3": shown["top3"], "model": shown["model"]}
                page.screenshot(work / f"digit-{digit}.png")
    finally:
        process.terminate()
        process.wait(timeout=20)
    right = sum(answer["answer"] == digit for digit, answer in answers.items())
    model = next(iter(answers.values()))["model"] if answers else None
    summary = {"right": right, "of": len(answers), "model": model, "screenshots": str(work)}
    summary["answers"] = {str(digit): answer["answer"] for digit, answer in answers.items()}
    print(json.dumps(summary, indent=2))
    return 0 if right >= NEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
