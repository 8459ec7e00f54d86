"""`mnist-pipeline run` refuses bad input before any Prefect work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tests.support import find_free_port


def test_unreachable_prefect_api_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    url = f"http://127.0.0.1:{find_free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    code = main(["run", "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"PREFECT_API_URL={url}" in err[0] and "make server" in err[0]
    assert not (tmp_path / "data").exists()


def test_bad_option_value_fails_before_prefect_starts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--models", "cnn,resnet", "--data-dir", str(tmp_path / "data")])
    assert code == 2
    assert "'resnet'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "61 * * * *"), "--cron: expected a cron expression like '0 3 * * 1', found '61 * * * *'"),
        (("--cron", "every monday"), "--cron: expected a cron expression"),
        (
            ("--timezone", "Mars/Olympus"),
            "--timezone: expected an IANA zone like 'Europe/Berlin', found 'Mars/Olympus'",
        ),
    ],
)
def test_bad_schedule_fails_before_anything_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: tuple[str, ...], message: str
) -> None:
    code = main(["serve", *args, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "data").exists()


def test_without_a_server_the_run_uses_a_temporary_one_and_stops_it(tmp_path: Path, synthetic_npz: Path) -> None:
    """The temporary server starts before the flow's imports, holds this run's history, and is gone afterwards."""
    import json
    import os
    import shutil
    import sqlite3
    import subprocess
    import sys
    from contextlib import closing

    from flows.database_template import TEMPLATE_ENV, build_template, find_template

    home = tmp_path / "prefect-home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(home)
    # The new home starts from a template, here one with a table of our own to recognise it by.
    installed, template = find_template(), tmp_path / "template.db"
    if installed is not None and installed.is_file():
        shutil.copyfile(installed, template)
    else:
        build_template(template)
    with closing(sqlite3.connect(template)) as database:
        database.execute("CREATE TABLE seeded_from_template (id INTEGER)")
    env[TEMPLATE_ENV] = str(template)
    command = [sys.executable, "-m", "cli.main", "run", "--source", f"npz:{synthetic_npz}"]
    command += ["--models", "ann_no_hidden", "--epochs", "ann_no_hidden=1"]
    command += ["--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics_line = next(line for line in done.stdout.splitlines() if line.startswith("metrics: "))
    metrics = json.loads(Path(metrics_line.removeprefix("metrics: ")).read_text())
    assert metrics["run"]["flow_run_url"] is None  # a temporary server has no UI to link to
    with closing(sqlite3.connect(home / "prefect.db")) as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        runs = database.execute("SELECT count(*) FROM flow_run").fetchone()[0]
        block_types = database.execute("SELECT count(*) FROM block_type").fetchone()[0]
    assert "seeded_from_template" in tables  # the database is the template's copy ...
    assert runs >= 2  # ... and holds this run's history (the flow and its training subflow)
    assert block_types == 0  # the temporary server registered none
    memo = home / "memo_store.toml"  # block types were not registered, nor marked as done for a later server
    assert not memo.exists() or "block_auto_registration" not in memo.read_text()
    still_running = []
    for proc in Path("/proc").iterdir():
        try:
            if f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                still_running.append(proc.name)
        except OSError:
            continue
    assert still_running == []


@pytest.mark.parametrize(("code", "message"), [(3, "found it taken"), (1, "exited with 1")])
def test_a_temporary_server_that_exits_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, code: int, message: str
) -> None:
    import subprocess
    import sys

    from flows import temporary_server
    from mnist_pipeline.errors import PipelineError

    def exit_at_once(port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])

    monkeypatch.setattr(temporary_server, "_launch", exit_at_once)
    server = temporary_server.TemporaryServer()
    with pytest.raises(PipelineError, match=message):
        server.wait(timeout=30)


def test_the_command_leaves_the_exit_collection_nothing_to_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    from importlib.metadata import entry_points

    from cli import main as cli

    (command,) = entry_points(group="console_scripts", name="mnist-pipeline")
    assert command.value == "cli.main:console_main"
    monkeypatch.setattr(cli, "main", lambda: 0)
    gc.unfreeze()
    try:
        assert cli.console_main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
