"""OS errors (unwritable folders, a file where a folder should be, a full disk) end in one line and exit 2."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.main import main

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith("mnist-pipeline: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_data_dir_under_a_regular_file_is_one_line_exit_2(tmp_path: Path, synthetic_npz: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file\n")
    done = subprocess.run(
        [CLI, "ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(blocker / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert_one_line_error(done.stderr, str(blocker / "data"), "expected a directory", "Not a directory")
    assert blocker.read_text() == "a file\n"


def read_only_mount_command(mount_point: Path, command: list[str]) -> list[str]:
    """Run `command` with a read-only tmpfs mounted on `mount_point`, in a private user and mount namespace.

    Works for root and non-root alike (root could write through mere permission bits, not through a read-only
    file system), and leaves no mount behind when the command ends.
    """
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$0" && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, str(mount_point), *command]


def test_read_only_data_dir_is_one_line_exit_2(tmp_path: Path, synthetic_npz: Path) -> None:
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    probe = subprocess.run(read_only_mount_command(mount_point, ["true"]), capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount possible here: {probe.stderr.strip()}")
    command = [CLI, "ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(mount_point / "data")]
    done = subprocess.run(
        read_only_mount_command(mount_point, command), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert_one_line_error(done.stderr, str(mount_point / "data"), "mkdir failed", "Read-only file system")


def published_state(data_dir: Path) -> tuple[str, list[str]]:
    """Where `parquet` points and which dataset folders exist (staging ones included)."""
    return str((data_dir / "parquet").readlink()), sorted(path.name for path in (data_dir / "datasets").iterdir())


def test_full_disk_during_ingest_keeps_the_previous_dataset(
    tmp_path: Path, synthetic_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC is injected (a full disk cannot be made here safely); everything around it is real."""
    import mnist_pipeline.data.store as store

    data_dir = tmp_path / "data"
    assert main(["ingest", "--source", f"npz:{synthetic_npz}", "--data-dir", str(data_dir)]) == 0
    before = published_state(data_dir)
    manifest = (data_dir / "parquet" / "manifest.json").read_bytes()
    smaller = tmp_path / "smaller.npz"
    with np.load(synthetic_npz) as arrays:
        np.savez(smaller, **{key: arrays[key][:600] for key in arrays.files})
    real_write = store.write_split

    def write_then_fail(path: Path, split: Any) -> None:
        real_write(path, split)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store, "write_split", write_then_fail)
    capsys.readouterr()
    assert main(["ingest", "--source", f"npz:{smaller}", "--data-dir", str(data_dir)]) == 2
    assert_one_line_error(capsys.readouterr().err, "train.parquet: ", "expected free disk space", "No space left")
    assert published_state(data_dir) == before
    assert (data_dir / "parquet" / "manifest.json").read_bytes() == manifest


def read_flow_run_logs(flow_run_id: Any) -> list[Any]:
    """Every log record the server holds for a flow run, after sending what this process still buffers."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))


@pytest.mark.usefixtures("prefect_server")
def test_flow_run_os_error_is_one_line_in_the_prefect_logs(tmp_path: Path, synthetic_npz: Path) -> None:
    from flows.pipeline import mnist_pipeline

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file\n")
    state = mnist_pipeline(
        source=f"npz:{synthetic_npz}",
        data_dir=str(blocker / "data"),
        reports_dir=str(tmp_path / "reports"),
        return_state=True,
    )
    assert state.is_failed()
    assert str(blocker / "data") in state.message and "expected a directory" in state.message
    assert "\n" not in state.message
    logs = read_flow_run_logs(state.state_details.flow_run_id)
    errors = [log.message for log in logs if log.level >= 40]
    assert errors, [log.message for log in logs]
    assert not [message for message in errors if "Traceback" in message or "\n" in message.strip()], errors
    assert any(str(blocker / "data") in message and "expected a directory" in message for message in errors)
    assert not (tmp_path / "reports" / "runs").exists()
