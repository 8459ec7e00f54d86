"""Digits as a person draws them, stroke by stroke, and drawing them on a page with real pointer input.

Each digit is one or more polylines on the drawing page's 280x280 canvas. Chromium turns the DevTools protocol's
`Input.dispatchMouseEvent` into the same pointer events (pointerdown, pointermove, pointerup) a mouse makes.
"""

from __future__ import annotations

import itertools
import json
import math

from tests.browser import Page

Stroke = list[tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float, turns: float, steps: int) -> Stroke:
    return [
        (
            cx + rx * math.cos(start + 2 * math.pi * turns * i / steps),
            cy + ry * math.sin(start + 2 * math.pi * turns * i / steps),
        )
        for i in range(steps + 1)
    ]


def _eight(steps: int = 40) -> Stroke:
    """Top loop, crossing in the middle, bottom loop: x = sin(2t), y = -cos(t)."""
    return [
        (140 + 48 * math.sin(2 * t), 140 - 85 * math.cos(t))
        for t in (2 * math.pi * i / steps for i in range(steps + 1))
    ]


DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [_ellipse(140, 140, 55, 85, -math.pi / 2, 1.05, 36)],
    1: [[(118, 82), (146, 52), (142, 230)]],
    2: [[(88, 95), (104, 64), (140, 50), (178, 62), (190, 98), (172, 136), (92, 224), (200, 222)]],
    3: [[(88, 70), (130, 50), (178, 62), (184, 100), (138, 134), (184, 160), (190, 200), (150, 230), (88, 214)]],
    4: [[(150, 50), (88, 166), (206, 166)], [(172, 100), (170, 232)]],
    5: [[(186, 55), (102, 55), (94, 130), (140, 118), (184, 140), (192, 184), (160, 224), (96, 214)]],
    6: [
        [
            (176, 52),
            (132, 74),
            (102, 128),
            (96, 182),
            (120, 222),
            (160, 226),
            (186, 194),
            (176, 154),
            (134, 144),
            (100, 172),
        ]
    ],
    7: [[(80, 60), (200, 60), (126, 232)]],
    8: [_eight()],
    9: [[*_ellipse(136, 100, 46, 46, 0.0, 1.0, 28), (182, 100), (178, 232)]],
}


def canvas_origin(page: Page, selector: str = "#pad") -> tuple[float, float]:
    """The page coordinates of the canvas's top-left corner (it is drawn 1:1, 280 CSS pixels wide)."""
    box = page.evaluate(
        f"(r => [r.left, r.top])(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"
    )
    return float(box[0]), float(box[1])


def mouse(page: Page, kind: str, x: float, y: float, buttons: int) -> None:
    page.call(
        "Input.dispatchMouseEvent",
        type=kind,
        x=x,
        y=y,
        button="left" if kind != "mouseMoved" or buttons else "none",
        buttons=buttons,
        clickCount=1 if kind != "mouseMoved" else 0,
    )


def draw_stroke(page: Page, stroke: Stroke, origin: tuple[float, float], step: float = 6.0) -> None:
    """Press, move along the polyline in small steps (as a hand does), release."""
    left, top = origin
    first_x, first_y = stroke[0]
    mouse(page, "mousePressed", left + first_x, top + first_y, 1)
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        count = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
        for i in range(1, count + 1):
            mouse(page, "mouseMoved", left + x0 + (x1 - x0) * i / count, top + y0 + (y1 - y0) * i / count, 1)
    last_x, last_y = stroke[-1]
    mouse(page, "mouseReleased", left + last_x, top + last_y, 0)


def touch_stroke(page: Page, stroke: Stroke, origin: tuple[float, float], step: float = 6.0) -> None:
    """The same stroke with a finger: touchStart, touchMove along it, touchEnd (touch emulation must be on)."""
    left, top = origin
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        count = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
        points += [(x0 + (x1 - x0) * i / count, y0 + (y1 - y0) * i / count) for i in range(1, count + 1)]
    page.call(
        "Input.dispatchTouchEvent", type="touchStart", touchPoints=[{"x": left + points[0][0], "y": top + points[0][1]}]
    )
    for x, y in points[1:]:
        page.call("Input.dispatchTouchEvent", type="touchMove", touchPoints=[{"x": left + x, "y": top + y}])
    page.call("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])


def draw_digit(page: Page, digit: int) -> None:
    origin = canvas_origin(page)
    for stroke in DIGIT_STROKES[digit]:
        draw_stroke(page, stroke, origin)


def click(page: Page, selector: str) -> None:
    """A real mouse click at the centre of the element."""
    x, y = page.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); "
        "return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    mouse(page, "mousePressed", x, y, 1)
    mouse(page, "mouseReleased", x, y, 0)


ANSWERED = (
    "(() => { const pad = document.getElementById('pad'); const preview = document.getElementById('preview');"
    " return pad.dataset.asked && pad.dataset.asked === pad.dataset.answered && !preview.hidden && preview.complete"
    " && { answer: document.getElementById('answer').textContent, previewWidth: preview.naturalWidth,"
    " previewHeight: preview.naturalHeight, top3: document.querySelectorAll('#top3 li').length,"
    " model: document.getElementById('model').textContent,"
    " status: document.getElementById('status').textContent }; })()"
)
