"""The review page's key round trip (issue 29): what one key press costs a reviewer, over HTTP, on the real app.

Copies DATA_DIR (which must have a `cnn` champion: `make run` trains one) to a temporary folder, so the bench never
writes yours; its inbox starts empty. Queues SCANS (a folder of images; by default at most 2 000 of them) with the
real `mnist-pipeline add-scans`, which scores them with that champion, then starts the real `mnist-pipeline app` on a
free loopback port and acts as the review page (mnist_pipeline/web/static/review.js) does, over keep-alive
connections with the headers a browser sends. One key press sets off, as on the page:

- `POST /api/review/{id}` with `{"label": D}`, then, once it is answered, `GET /api/review/status` (the counts);
- the image that enters the page's strip, `GET /api/review/{id}/image` (the digit now shown big was loaded in the
  strip already, under the same URL), on a second connection;
- when fewer than 5 digits are left on the page, `GET /api/review/next?limit=10`, then the images of the strip's
  new entries, on a third connection.

A key's round trip is the time from the key until the last of these is answered (they run side by side, as the
browser runs them). After each key, `GET /healthz` on the same connections is the floor: an HTTP round trip
through the same app, its middleware and uvicorn, doing nothing. D is the true digit when the scans lie in digit
folders (`bench/other_writers.py` writes them so), else the champion's answer (the Enter key). Keys start every
`--pace-ms` (a quick reviewer), or at once when the previous one took longer. A digit that another page labelled
after it was handed out to this one answers its image with 404 and its label with 409; the page goes on (the
browser shows a broken picture, then the error), and both are counted.

Scenarios, in this order, on one app process with its default batch of 100 labels:
1. one reviewer: the bench waits, untimed, for each batch's landing and gate to finish before the next key;
2. two reviewers at once, each a page of its own (with the same waits);
3. one reviewer while the `cnn` champion changes every `--promote-every` keys: a copy of the champion under a second
   key (the same network, so the app re-scores the whole queue with the real CNN) and the champion take turns
   through the registry (`force_promote`, which `mnist-pipeline champion --force-promote` calls); keys made while
   the queue was being re-scored are also reported alone;
4. one reviewer who does not stop for the gate: every 100th label the app lands a batch in a thread and starts
   `mnist-pipeline add-data --pending` (the gate) as a process; keys made while a landing or a gate ran are also
   reported alone.

`--scenarios` picks a subset (one,two,champion,gate). Before the app starts, the review desk's handlers are also
timed in the bench's own process, without HTTP, on the full queue (`handlers_in_process_ms`: status, next, and the
reads they make), to show where a slow round trip goes.

The gate and add-scans report to a private Prefect server started for the bench (as `make run` keeps one beside
the app), or with `--prefect ephemeral` to Prefect's ephemeral mode; neither touches ~/.prefect or a server of
yours. Prints one JSON line for the setup, one per scenario and one on the queue left and the gates, then a
markdown table; `--samples FILE` writes every key's timings as JSON lines. About 15 minutes on 2 cores with the
defaults, most of it waiting for gates.

    make run                                                       # trains a CNN champion into data/
    .venv/bin/python bench/other_writers.py --out /tmp/other-writers  # 1 797 scans of other writers, by digit
    .venv/bin/python bench/bench_review.py --data-dir data --scans /tmp/other-writers
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe_cpu

from mnist_pipeline.champion.registry import find_champion, force_promote, load_registry
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.increments.inbox import list_pending
from mnist_pipeline.modeling.registry import CNN_MODEL
from mnist_pipeline.predict.model_choice import choose_model
from mnist_pipeline.review.sampling import order_for_review
from mnist_pipeline.web.review import ReviewDesk

BIN = Path(sys.executable).parent
TARGET_MS = 50.0
STRIP = 6  # review.js shows held[0] big and held[1..6] in the strip
REFILL_BELOW = 5  # review.js fetches more when fewer than this are held
NEXT_LIMIT = 10
IDLE_REOPEN_S = 4.0  # the app closes a keep-alive connection 5 s after its last response
SETTLE_TIMEOUT_S = 900.0
# The keys of these scenarios made while this ran beside them are also reported alone.
ALONE = {
    "champion changes": ("rescore", "while the queue was re-scored"),
    "batches to the gate": ("batch", "while a batch landed or a gate ran"),
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


# --- setting up: a copy of the data dir, a queue, a second champion key, Prefect, the app ---------------------


def copy_data_dir(source: Path, target: Path) -> DataLayout:
    """Copy `source` without its downloads (`raw/`, read by ingest only), its inbox and its locks: the copy's review
    queue and inbox start empty. Exits when `source` has no `cnn` champion or no published test split."""
    try:
        choose_model(CNN_MODEL, DataLayout(source))
    except PipelineError as exc:
        sys.exit(f"--data-dir {source}: expected a cnn champion (run `make run` first), found: {exc}")
    if not DataLayout(source).split_file("test").is_file():
        sys.exit(f"--data-dir {source}: expected a published dataset (add-scans needs its test split), found none")

    def skip(folder: str, names: list[str]) -> set[str]:
        return {"raw", "inbox", ".locks"} & set(names) if Path(folder) == source else set()

    shutil.copytree(source, target, symlinks=True, ignore=skip)
    return DataLayout(target)


def pick_scans(source: Path, target: Path, limit: int) -> Path:
    """At most `limit` image files of `source`, spread evenly over its sorted list, copied into `target` under the
    same relative paths (so a digit folder still names the digit)."""
    files = sorted(path for path in source.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        sys.exit(f"--scans {source}: expected image files, found none")
    step = max(1.0, len(files) / limit)
    for index in range(min(limit, len(files))):
        path = files[int(index * step)]
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.relative_to(source))
    return target


def start_prefect_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on a free loopback port in its own home and session, as `make run` keeps one."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with (home / "server.log").open("ab") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{api}/health", timeout=2).close()
            return server, api
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop_group(server)
                sys.exit(f"prefect server on {api}: expected it to answer within 180 s, found none ({home}/server.log)")
            time.sleep(0.3)


def add_scans(layout: DataLayout, scans: Path, env: dict[str, str]) -> dict[str, Any]:
    command = [str(BIN / "mnist-pipeline"), "add-scans", str(scans), "--note", "bench_review"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--data-dir", str(layout.root)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"add-scans: expected exit 0, found {done.returncode}: {done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(("queued:", "scored:", "not scored:"))]
    return {"add_scans_s": round(time.perf_counter() - started, 1), "add_scans": lines}


class Champions:
    """The `cnn` champion and a copy of its files under a second key, made champion in turn through the registry:
    each change makes the app re-score the whole queue with the real network."""

    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout
        champion = find_champion(load_registry(layout.registry), CNN_MODEL)
        assert champion is not None
        twin_key = hashlib.sha256(f"bench_review twin of {champion.key}".encode()).hexdigest()[: len(champion.key)]
        original = layout.model_file(CNN_MODEL, champion.key)
        for path in original.parent.glob(f"{champion.key}.*"):
            shutil.copy2(path, path.with_name(twin_key + path.name.removeprefix(champion.key)))
        twin_file = layout.model_file(CNN_MODEL, twin_key)
        self.candidates = [champion, dataclasses.replace(champion, key=twin_key, model_path=str(twin_file))]
        self.changes: list[tuple[str, int]] = []  # (key, time.time_ns() of the change)
        self.durations_s: dict[int, float] = {}  # change -> seconds until re-scored

    def change(self) -> None:
        candidate = self.candidates[(len(self.changes) + 1) % 2]  # the twin first, then the original, ...
        at = datetime.now(UTC).isoformat(timespec="seconds")
        force_promote(self.layout.registry, CNN_MODEL, candidate, "bench_review: a champion change", at)
        self.changes.append((candidate.key, time.time_ns()))

    def rescoring(self) -> bool:
        """Whether the queue's scores are older than the last change (scores.json is replaced when they are done)."""
        if not self.changes:
            return False
        try:
            scored_ns = (self.layout.review / "scores.json").stat().st_mtime_ns
        except FileNotFoundError:
            return True
        changed_ns = self.changes[-1][1]
        if scored_ns < changed_ns:
            return True
        self.durations_s.setdefault(len(self.changes) - 1, round((scored_ns - changed_ns) / 1e9, 2))
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_app(layout: DataLayout, reports: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [str(BIN / "mnist-pipeline"), "app", "--port", str(port), "--data-dir", str(layout.root)]
    with log.open("ab") as output:
        app = subprocess.Popen(
            [*command, "--reports-dir", str(reports)], env=env, stdout=output, stderr=output, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if app.poll() is not None:
            sys.exit(f"mnist-pipeline app exited with {app.returncode} ({log})")
        probe = Connection(port)
        try:
            status, body, _ = probe.call("GET", "/healthz")
            if status == 200 and json.loads(body)["champion"]:
                return app, port
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(0.1)
    stop_group(app)
    sys.exit(f"mnist-pipeline app: expected /healthz to answer with a champion within 120 s, found none ({log})")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the session this bench started `process` in, then wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# --- what is going on beside the keys: batches landing, gates running ------------------------------------------


def find_gates(layout: DataLayout) -> set[int]:
    """Pids of the gates the app started on this (temporary) data dir: `add-data --pending --data-dir ROOT`."""
    root = str(layout.root).encode()
    found = set()
    for folder in Path("/proc").iterdir():
        if folder.name.isdigit():
            try:
                command = (folder / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"add-data" in command and b"--pending" in command and root in command:
                found.add(int(folder.name))
    return found


def is_running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def batch_ids(layout: DataLayout) -> set[str]:
    folders = (layout.inbox, layout.increments, layout.refused)
    return {path.name for folder in folders if folder.is_dir() for path in folder.glob("b-*")}


class Batches:
    """Whether a batch of labels is landing (the app's thread) or being judged (a gate process), from the files and
    the processes. `arm` when a label's answer says the batch size was reached; armed until a batch landed (or a
    gate ran) and no landing, waiting batch or gate is left; 5 minutes at most (repeats dropped: nothing lands)."""

    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout
        self.lock = threading.Lock()
        self.armed_at: float | None = None
        self.known: set[str] = set()
        self.saw_gate = False
        self.gates: dict[int, list[float]] = {}  # pid -> [first seen, last seen running]

    def arm(self) -> None:
        with self.lock:
            if self.armed_at is None:
                self.armed_at, self.known, self.saw_gate = time.monotonic(), batch_ids(self.layout), False

    def busy(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if self.armed_at is not None or any(is_running(pid) for pid in self.gates):
                for pid in find_gates(self.layout):
                    self.gates.setdefault(pid, [now, now])
            running = [pid for pid in self.gates if is_running(pid)]
            for pid in running:
                self.gates[pid][1] = now
            submitting = any(self.layout.reviewed.glob(".submitting-*"))
            if self.armed_at is not None:
                self.saw_gate |= bool(running)
                landed = bool(batch_ids(self.layout) - self.known)
                waiting = bool(list_pending(self.layout)) and not self.saw_gate  # landed, its gate not seen yet
                done = (landed or self.saw_gate) and not (submitting or running or waiting)
                if done or now - self.armed_at > 300:
                    self.armed_at = None
            return self.armed_at is not None or submitting or bool(running)

    def gate_seconds(self) -> list[float]:
        return [round(last - first, 1) for first, last in self.gates.values()]


# --- the page ------------------------------------------------------------------------------------------------


class Connection:
    """One keep-alive connection, as a browser keeps one: Nagle off, reopened (untimed) once the app may have
    closed it for idleness; a request that meets a closed connection anyway is sent again on a new one, timed from
    the first try."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None
        self.used = 0.0
        self.retries = 0

    def open(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        headers = {"Sec-Fetch-Site": "same-origin"}
        if method == "POST":
            headers |= {"Origin": f"http://127.0.0.1:{self.port}", "Content-Type": "application/json"}
        if self.connection is None or time.monotonic() - self.used > IDLE_REOPEN_S:
            self.open()
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                assert self.connection is not None
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 2:
                    raise
                self.retries += 1
                self.open()
        self.used = time.monotonic()
        return response.status, data, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def true_label(item: dict[str, Any]) -> int:
    """The digit folder the scan came from, else the champion's answer (the Enter key), else 0."""
    folder = Path(str(item.get("source") or "")).parent.name
    if len(folder) == 1 and folder.isdigit():
        return int(folder)
    return int(item["predicted"]) if item.get("predicted") is not None else 0


def expect(status: int, data: bytes, what: str, wanted: int = 200) -> None:
    if status != wanted:
        raise RuntimeError(f"{what}: expected HTTP {wanted}, found {status}: {data[:300]!r}")


class Page:
    """One reviewer's page: the digits handed out to it, in review order, and which of their images it loaded."""

    def __init__(self, port: int) -> None:
        self.labels, self.strip, self.fill = Connection(port), Connection(port), Connection(port)
        self.pool = ThreadPoolExecutor(2)
        self.held: list[dict[str, Any]] = []
        self.loaded: set[str] = set()
        self.lock = threading.Lock()
        self.empty = False
        self.gone: list[str] = []  # images that answered 404

    def open(self) -> None:
        """Load the page: the first digits, their images, the counts (untimed)."""
        self.fetch_next()
        self.load_images(self.to_load(), self.strip)
        expect(*self.labels.call("GET", "/api/review/status")[:2], "status")

    def to_load(self) -> list[str]:
        """The ids shown now (big and in the strip) whose image this page has not asked for yet, marked asked."""
        with self.lock:
            shown = [item["id"] for item in self.held[: STRIP + 1] if item["id"] not in self.loaded]
            self.loaded.update(shown)
        return shown

    def load_images(self, ids: list[str], connection: Connection) -> list[float]:
        """GET each image; a 404 (labelled by another page since it was handed out here) is a broken picture on the
        page, counted in `gone`."""
        times = []
        for item_id in ids:
            status, data, took = connection.call("GET", f"/api/review/{item_id}/image")
            if status == 404:
                self.gone.append(item_id)
            else:
                expect(status, data, f"image {item_id}")
            times.append(took)
        return times

    def fetch_next(self) -> float:
        status, data, took = self.fill.call("GET", f"/api/review/next?limit={NEXT_LIMIT}")
        expect(status, data, "next")
        items = json.loads(data)
        with self.lock:
            ids = {item["id"] for item in self.held}
            self.held += [item for item in items if item["id"] not in ids]
            self.empty = not items
        return took

    def refill(self) -> tuple[float, float, list[float]]:
        took = self.fetch_next()
        images = self.load_images(self.to_load(), self.fill)
        return time.perf_counter(), took, images

    def show(self, ids: list[str]) -> tuple[float, list[float]]:
        images = self.load_images(ids, self.strip)
        return time.perf_counter(), images

    def press(self) -> dict[str, Any] | None:
        """One key: the label of the digit shown, and what the page asks for because of it; None when none is left."""
        if not self.held and not self.empty:
            self.fetch_next()
        if not self.held:
            return None
        item = self.held.pop(0)
        label = true_label(item)
        started = time.perf_counter()
        shown: Future | None = self.pool.submit(self.show, ids) if (ids := self.to_load()) else None
        refilled: Future | None = self.pool.submit(self.refill) if len(self.held) < REFILL_BELOW else None
        status, data, post_ms = self.labels.call(
            "POST", f"/api/review/{item['id']}", json.dumps({"label": label}).encode()
        )
        conflict = status == 409  # another page labelled it first: the page says so and goes on
        if not conflict:
            expect(status, data, f"label {item['id']}")
        answer = json.loads(data)
        status, body, status_ms = self.labels.call("GET", "/api/review/status")
        expect(status, body, "status")
        ends, images, next_ms = [time.perf_counter()], [], None
        if shown is not None:
            end, times = shown.result()
            ends.append(end)
            images += times
        if refilled is not None:
            end, next_ms, times = refilled.result()
            ends.append(end)
            images += times
        key_ms = (max(ends) - started) * 1000
        status, body, healthz_ms = self.labels.call("GET", "/healthz")
        expect(status, body, "healthz")
        return {
            "key_ms": round(key_ms, 3),
            "post_ms": round(post_ms, 3),
            "status_ms": round(status_ms, 3),
            "image_ms": [round(value, 3) for value in images],
            "next_ms": None if next_ms is None else round(next_ms, 3),
            "healthz_ms": round(healthz_ms, 3),
            "conflict": conflict,
            "waiting": answer.get("waiting", 0),
            "threshold": answer.get("threshold", 1 << 30),
        }

    def close(self) -> None:
        self.pool.shutdown()
        for connection in (self.labels, self.strip, self.fill):
            connection.close()


# --- scenarios -----------------------------------------------------------------------------------------------


class Session:
    """The keys of every scenario, each tagged with what ran beside it."""

    def __init__(self, port: int, batches: Batches, champions: Champions, pace_s: float) -> None:
        self.port = port
        self.batches = batches
        self.champions = champions
        self.pace_s = pace_s
        self.samples: list[dict[str, Any]] = []
        self.settle_lock = threading.Lock()
        self.waited_s = 0.0
        self.retries: list[int] = []  # requests sent again because they met a connection the app had closed
        self.gone: list[str] = []  # images handed out that answered 404

    def beside(self) -> set[str]:
        found = set()
        if self.batches.busy():
            found.add("batch")
        if self.champions.rescoring():
            found.add("rescore")
        return found

    def settle(self) -> None:
        """Wait (untimed) until no batch lands, no gate runs and the queue's scores are the champion's."""
        with self.settle_lock:
            started = time.monotonic()
            while self.beside():
                if time.monotonic() - started > SETTLE_TIMEOUT_S:
                    raise TimeoutError(f"batches or re-scoring still running after {SETTLE_TIMEOUT_S} s")
                time.sleep(0.5)
            self.waited_s += time.monotonic() - started

    def review(
        self,
        scenario: str,
        reviewer: int,
        presses: int,
        stop_for_batches: bool,
        before_key: Callable[[int], None] | None = None,
    ) -> None:
        page = Page(self.port)
        page.open()
        try:
            for index in range(presses):
                if stop_for_batches and self.batches.armed_at is not None:
                    self.settle()
                due = time.monotonic() + self.pace_s
                if before_key is not None:
                    before_key(index)
                before = self.beside()
                sample = page.press()
                if sample is None:
                    break
                if sample["waiting"] >= sample["threshold"]:
                    self.batches.arm()
                sample |= {"scenario": scenario, "reviewer": reviewer, "key": index}
                self.samples.append(sample | {"beside": sorted(before | self.beside())})
                time.sleep(max(0.0, due - time.monotonic()))
        finally:
            page.close()
            self.retries.extend(connection.retries for connection in (page.labels, page.strip, page.fill))
            self.gone.extend(page.gone)

    def reviewers(self, scenario: str, count: int, presses: int, stop_for_batches: bool) -> None:
        with ThreadPoolExecutor(count) as pool:
            pages = [pool.submit(self.review, scenario, r, presses, stop_for_batches) for r in range(count)]
        for page in pages:
            page.result()  # a page's failure fails the bench


def cut(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "max": round(ordered[-1], 2)}


def summarise(name: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    keys, floor = cut([s["key_ms"] for s in samples]), cut([s["healthz_ms"] for s in samples])
    ratios = {f"key_over_healthz_{q}": round(keys[q] / floor[q], 1) for q in ("p50", "p95")} if keys and floor else {}
    return {
        "scenario": name,
        "keys": len(samples),
        "key_ms": keys,
        "post_ms": cut([s["post_ms"] for s in samples]),
        "status_ms": cut([s["status_ms"] for s in samples]),
        "image_ms": cut([value for s in samples for value in s["image_ms"]]),
        "next_ms": cut([s["next_ms"] for s in samples if s["next_ms"] is not None]),
        "healthz_ms": floor,
        **ratios,
        f"keys_over_{TARGET_MS:.0f}_ms": sum(s["key_ms"] > TARGET_MS for s in samples),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | keys | key p50 | key p95 | key max | POST p50 / p95 | next p50 / p95 | /healthz p50 / p95 "
        "| key / healthz (p50, p95) | keys > 50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if not row["keys"]:
            lines.append(f"| {row['scenario']} | 0 | | | | | | | | |")
            continue
        key, post, floor, fetched = row["key_ms"], row["post_ms"], row["healthz_ms"], row["next_ms"]
        refill = f"{fetched['p50']:.1f} / {fetched['p95']:.1f} ms" if fetched else "-"
        lines.append(
            f"| {row['scenario']} | {row['keys']} | {key['p50']:.1f} ms | {key['p95']:.1f} ms | {key['max']:.1f} ms "
            f"| {post['p50']:.1f} / {post['p95']:.1f} ms | {refill} | {floor['p50']:.1f} / {floor['p95']:.1f} ms "
            f"| {row['key_over_healthz_p50']}x, {row['key_over_healthz_p95']}x | {row['keys_over_50_ms']} |"
        )
    return "\n".join(lines)


def time_handlers(layout: DataLayout, repeats: int = 20) -> dict[str, float]:
    """Medians (ms) of the review desk's work in this process, no HTTP, on the queue as the app finds it: what
    `GET /api/review/status` and `GET /api/review/next` do, and their parts. A desk of its own (its leases are its
    own); its first refresh scores nothing (the champion scored the queue) and is waited out first."""
    desk = ReviewDesk(layout, threshold=10**9, submit=dict, idle_seconds=3600.0)
    desk.refresh()
    time.sleep(2.0)
    queue = desk.queue
    scores = queue.read_scores()
    confidences = {item: scores.answers.get(item, {}).get("confidence") for item in queue.list_queued()}
    parts: dict[str, Callable[[], object]] = {
        "status (the handler)": desk.status,
        "next?limit=10 (the handler)": lambda: desk.hand_out(10),
        "read scores.json": queue.read_scores,
        "read items.json": queue.read_items,
        "list the queue folder": queue.list_queued,
        "order_for_review": lambda: order_for_review(confidences),
        "estimate_audit": lambda: queue.estimate_audit(scores),
    }
    medians = {}
    for name, part in parts.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            part()
            times.append((time.perf_counter() - started) * 1000)
        medians[name] = round(statistics.median(times), 2)
    return medians


SCENARIOS = {
    "one": "one reviewer",
    "two": "two reviewers",
    "champion": "champion changes",
    "gate": "batches to the gate",
}


def run_scenario(session: Session, name: str, keys: int, promote_every: int) -> None:
    if name == "one reviewer":
        session.review(name, 0, keys, stop_for_batches=True)
    elif name == "two reviewers":
        session.reviewers(name, 2, (keys + 1) // 2, stop_for_batches=True)
    elif name == "champion changes":

        def change_champion(index: int) -> None:
            if index % promote_every == 0:
                session.champions.change()

        session.review(name, 0, keys, stop_for_batches=True, before_key=change_champion)
    else:
        session.review(name, 0, keys, stop_for_batches=False)


def report(session: Session, names: list[str], loads: dict[str, list[Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        mine = [sample for sample in session.samples if sample["scenario"] == name]
        row = summarise(name, mine) | {"load_average": loads[name]}
        if name == "two reviewers":
            row["per_reviewer_key_ms"] = [cut([s["key_ms"] for s in mine if s["reviewer"] == r]) for r in (0, 1)]
        if name == "champion changes":
            champions = session.champions
            row |= {"changes": len(champions.changes), "rescore_s": list(champions.durations_s.values())}
        rows.append(row)
        if name in ALONE:
            tag, label = ALONE[name]
            rows.append(summarise(f"{name}: {label}", [sample for sample in mine if tag in sample["beside"]]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="a data dir with a cnn champion (copied)")
    parser.add_argument("--scans", type=Path, required=True, help="a folder of scans to queue (bench/other_writers.py)")
    parser.add_argument("--queue", type=int, default=2000, help="queue at most this many scans (default: %(default)s)")
    parser.add_argument("--keys", type=int, default=300, help="keys per scenario (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed keys first (default: %(default)s)")
    parser.add_argument("--pace-ms", type=float, default=250.0, help="a key every N ms at most (default: %(default)s)")
    parser.add_argument("--promote-every", type=int, default=30, help="keys between champion changes (default: 30)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"a comma-separated subset of {','.join(SCENARIOS)}"
    )
    parser.add_argument("--prefect", choices=("server", "ephemeral"), default="server", help="where flows report")
    parser.add_argument("--samples", type=Path, help="write every key's timings here, one JSON object a line")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data copy, logs)")
    args = parser.parse_args()
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios: expected a subset of {','.join(SCENARIOS)}, found {','.join(sorted(unknown))}")
    names = [SCENARIOS[key] for key in SCENARIOS if key in args.scenarios.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-review-"))
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env |= {"MNIST_PIPELINE_LOCAL_SERVER": "off"}  # never a server of yours on PREFECT_PORT
    server = app = None
    batches: Batches | None = None
    loads: dict[str, list[Any]] = {}
    try:
        layout = copy_data_dir(args.data_dir.resolve(), work / "data")
        if args.prefect == "server":
            server, env["PREFECT_API_URL"] = start_prefect_server(work / "prefect", env)
        setup = add_scans(layout, pick_scans(args.scans, work / "scans", args.queue), env)
        setup["handlers_in_process_ms"] = time_handlers(layout)
        app, port = start_app(layout, work / "reports", env, work / "app.log")
        batches = Batches(layout)
        session = Session(port, batches, Champions(layout), args.pace_ms / 1000)
        setup |= {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu": describe_cpu(),
            "load_average": os.getloadavg(),
            "champion": session.champions.candidates[0].key,
            "queued": len(list((layout.review / "queue").glob("*.png"))),
            "prefect": args.prefect,
        }
        print(json.dumps({"setup": setup}), flush=True)
        session.review("warm-up", 0, args.warmup, stop_for_batches=True)
        session.settle()
        for name in names:
            started = os.getloadavg()
            run_scenario(session, name, args.keys, args.promote_every)
            loads[name] = [started, os.getloadavg()]
            session.settle()
        gate_log = layout.inbox / "feedback-gate.log"
        logged = gate_log.read_text().splitlines() if gate_log.is_file() else []
        outcomes = [line for line in logged if line.startswith(("accepted:", "refused:"))]
        left = len(list((layout.review / "queue").glob("*.png")))
    finally:
        if app is not None:
            stop_group(app)
        if batches is not None:  # gates still running (a failed run): started by the app on this copy, ended here
            for pid in find_gates(batches.layout):
                os.killpg(pid, signal.SIGTERM)
        if server is not None:
            stop_group(server)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    if args.samples:
        timed = [sample for sample in session.samples if sample["scenario"] != "warm-up"]
        args.samples.write_text("".join(json.dumps(sample) + "\n" for sample in timed))
    rows = report(session, names, loads)
    for row in rows:
        print(json.dumps(row), flush=True)
    waited = round(session.waited_s, 1)
    gates = {"gate_s": batches.gate_seconds(), "outcomes": outcomes}
    summary = {"left_in_queue": left, "waited_untimed_s": waited, "requests_sent_again": sum(session.retries)}
    conflicts = sum(sample["conflict"] for sample in session.samples)
    summary |= {"images_answering_404": len(session.gone), "labels_answering_409": conflicts}
    print(json.dumps(summary | {"gates": gates}))
    print()
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
