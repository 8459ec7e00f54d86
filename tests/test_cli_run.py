"""`mnist-pipeline run` refuses bad input before any Prefect work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_pipeline.cli import main
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
