"""The temporary server's database template: built by Prefect's own migrations, copied only into a new home."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from flows.database_template import build_template, parse_sqlite_file, seed_database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:////home/u/.prefect/prefect.db", Path("/home/u/.prefect/prefect.db")),
        ("sqlite+aiosqlite:////tmp/p.db?timeout=30", Path("/tmp/p.db")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file::memory:?cache=shared", None),
        ("postgresql+asyncpg://user:secret@db:5432/prefect", None),
    ],
)
def test_only_a_sqlite_file_can_be_seeded(url: str, expected: Path | None) -> None:
    assert parse_sqlite_file(url) == expected


@pytest.mark.parametrize("database_url", [None, "postgresql+asyncpg://u:p@db/prefect"])
def test_the_database_is_the_one_prefect_would_use(tmp_path: Path, database_url: str | None) -> None:
    """Asked in a new process, as the server's process asks: Prefect fixes its settings once per process."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if "DATABASE" not in key}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    if database_url is not None:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    code = "from flows.database_template import find_configured_database; print(find_configured_database())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = tmp_path / "home" / "prefect.db" if database_url is None else None
    assert done.stdout.strip() == str(expected)


def test_a_new_home_gets_a_copy_and_an_existing_database_is_never_replaced(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    template.write_bytes(b"migrated schema")
    database = tmp_path / "new-home" / "prefect.db"
    assert seed_database(database, template)
    assert database.read_bytes() == b"migrated schema"
    database.write_bytes(b"this home's run history")
    assert not seed_database(database, template)
    assert database.read_bytes() == b"this home's run history"
    assert sorted(p.name for p in database.parent.iterdir()) == ["prefect.db"]  # no partial copy left


def test_without_a_template_prefect_creates_the_database_itself(tmp_path: Path) -> None:
    database = tmp_path / "home" / "prefect.db"
    assert not seed_database(database, tmp_path / "no-template.db")
    assert not database.exists()


def test_the_template_is_prefect_fully_migrated_in_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever database the environment names (either spelling of the setting) is left alone."""
    for setting in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        monkeypatch.setenv(setting, f"sqlite+aiosqlite:///{tmp_path / 'users-own.db'}")
    import prefect.server.database
    from alembic.script import ScriptDirectory

    migrations = Path(prefect.server.database.__file__).parent / "_migrations"
    (head,) = ScriptDirectory(str(migrations), version_locations=[str(migrations / "versions" / "sqlite")]).get_heads()
    template = tmp_path / "share" / "prefect.db"
    build_template(template)
    with closing(sqlite3.connect(template)) as database:
        (revision,) = database.execute("SELECT version_num FROM alembic_version").fetchone()
        (journal,) = database.execute("PRAGMA journal_mode").fetchone()
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert revision == head
    assert journal == "delete"  # no -wal file holds part of it
    assert {"flow_run", "task_run", "artifact"} <= tables
    assert sorted(p.name for p in template.parent.iterdir()) == ["prefect.db"]
    assert not (tmp_path / "users-own.db").exists()


def test_the_template_can_be_named_or_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.database_template import TEMPLATE_ENV, find_template

    monkeypatch.delenv(TEMPLATE_ENV, raising=False)
    assert find_template() is not None and find_template().name.startswith("prefect-")
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "mine.db"))
    assert find_template() == tmp_path / "mine.db"
    monkeypatch.setenv(TEMPLATE_ENV, "")
    assert find_template() is None


def test_a_leftover_journal_or_a_failed_copy_leaves_the_database_to_prefect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    template = tmp_path / "template.db"
    template.write_bytes(b"migrated schema")
    home = tmp_path / "home"
    home.mkdir()
    (home / "prefect.db-wal").write_bytes(b"pages of a deleted database")
    assert not seed_database(home / "prefect.db", template)
    assert not (home / "prefect.db").exists()

    def no_hard_links(*_: object) -> None:
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_hard_links)
    other = tmp_path / "other-home"
    assert not seed_database(other / "prefect.db", template)
    assert list(other.iterdir()) == []  # neither a database nor a partial copy


def test_the_server_gets_the_current_setting_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's older spelling must not override what the temporary server needs (the older name loses to the
    current one in Prefect, but only when the current one is set)."""
    from flows.temporary_server import SERVER_ENV, _server_env

    monkeypatch.setenv("PREFECT_API_BLOCKS_REGISTER_ON_START", "1")
    monkeypatch.setenv("PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION", "1")
    env = _server_env()
    assert "PREFECT_API_BLOCKS_REGISTER_ON_START" not in env
    assert "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION" not in env
    assert {key: env[key] for key in SERVER_ENV} == SERVER_ENV
