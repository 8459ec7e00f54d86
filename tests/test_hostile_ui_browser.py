"""Issue 25 point 8: input names with markdown or HTML in them show as themselves in the real Prefect UI.

The batch-predict artifact is posted to the real test server and its page loaded in headless Chromium: the text
the UI renders must be the names as they are (`it's 7.png` was shown as `it&#x27;s 7.png`), and no tag from a
name (`<u>`, `<s>`: tags the UI itself does not use) may become an element. Then every other artifact kind, each
with one name that holds a remote image, a link, a bare URL and raw HTML: none may become an element.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.predict.answer import Answer, Prediction, Predictions
from mnist_pipeline.predict.batch import render_batch_markdown
from mnist_pipeline.predict.model_choice import ModelChoice
from tests.browser import open_page
from tests.test_markdown import ARTIFACTS

NAMES = ["it's 7.png", "<u>under</u> & *stars* _x_ [l](u) a|b #1 `c`.png"]
PAGE_TIMEOUT = 120
EVIL = "![x](http://evil/t.png) <img src=x> it's <u>7</u> a|b *c* [l](http://evil/l) www.evil.com \\ `d`.png"
INJECTED = 'document.querySelectorAll(\'u, s, em, img[src="x"], img[src*="evil"], a[href*="evil"]\').length'


def test_names_render_as_themselves_on_the_artifact_page(prefect_server: str, chromium: str, tmp_path: Path) -> None:
    from prefect.artifacts import create_markdown_artifact

    choice = ModelChoice("cnn", "0123456789abcdef01234567", Path("/m/cnn.keras"), "run-x", "champion", Path("/d"))
    items = [Prediction(f"/in/{name}", 7, 0.5, ((7, 0.5), (1, 0.3), (2, 0.2)), unsure=True) for name in NAMES]
    predictions = Predictions(items, 0.9, 0.005)
    failures = [(f"/in/bad {name}", "expected an image Pillow can read, found: it's <s>not</s>") for name in NAMES]
    result = Answer(choice, predictions, failures, np.zeros((len(NAMES), 28, 28), dtype=np.uint8))
    markdown = render_batch_markdown(result, Path("/out/predictions.parquet"), "run it's")
    artifact_id = create_markdown_artifact(markdown, key="escaping-check", description="escaping")

    url = f"{prefect_server.removesuffix('/api')}/artifacts/artifact/{artifact_id}"
    with open_page(chromium, tmp_path / "profile", 1280, 1400, tmp_path / "chromium.log") as page:
        page.call("Page.navigate", url=url)
        shown = page.wait_for(
            "(() => { const text = document.body.innerText; return text.includes('Failed inputs') && text; })()",
            PAGE_TIMEOUT,
        )
        if not shown:
            pytest.fail(f"the artifact page never showed; screenshot {page.screenshot(tmp_path / 'page.png')}")
        injected = page.evaluate("document.querySelectorAll('u, s').length")
    for name in NAMES:
        assert f"/in/{name}" in shown, f"{name!r} is not shown as itself; screenshot in {tmp_path}"
        assert f"/in/bad {name}: expected an image Pillow can read, found: it's <s>not</s>" in shown
    assert "Batch predictions, run it's" in shown
    assert "&#" not in shown and "&amp;" not in shown and "\\" not in shown
    assert injected == 0


def test_every_artifact_kind_shows_a_hostile_name_inert(prefect_server: str, chromium: str, tmp_path: Path) -> None:
    from prefect.artifacts import create_markdown_artifact

    ids = {
        kind: create_markdown_artifact(render(EVIL), key=f"hostile-{kind.replace(' ', '-')}", description=kind)
        for kind, (render, _) in ARTIFACTS.items()
    }
    base = prefect_server.removesuffix("/api")
    with open_page(chromium, tmp_path / "profile", 1280, 1400, tmp_path / "chromium.log") as page:
        for kind, artifact_id in ids.items():
            page.call("Page.navigate", url=f"{base}/artifacts/artifact/{artifact_id}")
            shown = page.wait_for(
                f"(() => {{ const text = document.body.innerText; return location.href.endsWith('{artifact_id}') "
                f"&& text.includes({json.dumps(EVIL)}) && text; }})()",
                PAGE_TIMEOUT,
            )
            if not shown:
                shot = page.screenshot(tmp_path / f"{artifact_id}.png")
                pytest.fail(f"{kind}: the name is not shown as itself; screenshot {shot}")
            assert page.evaluate(INJECTED) == 0, kind
            rest = shown.replace(EVIL, "")
            assert not [mark for mark in ("&#", "&amp;", "&lt;", "\\") if mark in rest], (kind, rest)
