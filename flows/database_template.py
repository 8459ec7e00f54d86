"""A new PREFECT_HOME's database copied from a migrated template instead of built by Prefect's migrations.

Why: on a new PREFECT_HOME the temporary server first runs Prefect's 114 Alembic migrations on an empty SQLite
file. Profiled on a 2-core machine that is 7.6 s of SQLAlchemy reflection inside `batch_alter_table`, every time
a user, a test or a scheduled job starts from a new home; the result is the same empty schema each time.
`make install` builds that schema once per environment (`python -m flows.database_template`, next to the Prefect
it belongs to), and the temporary server's process copies it into a home that has no database yet, as PostgreSQL
creates databases from `template1`. Prefect still runs its migrations at start-up; on the copy they find nothing
to do. Without a template (a plain `pip install`) nothing changes: Prefect migrates as usual.

This module is also the temporary server's entry point: `python -m flows.database_template serve UVICORN_ARGS`
seeds the database, then hands the process to uvicorn with those arguments.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

SQLITE_PREFIX = "sqlite+aiosqlite:///"
TEMPLATE_ENV = "MNIST_PIPELINE_PREFECT_TEMPLATE"


def template_path() -> Path | None:
    """Where this environment keeps the template: beside the installed Prefect, one per Prefect version.

    TEMPLATE_ENV names another file instead, or, set empty, turns seeding off (Prefect then migrates as usual).
    """
    chosen = os.environ.get(TEMPLATE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen else None
    return Path(sys.prefix) / "share" / "mnist-pipeline" / f"prefect-{version('prefect')}.db"


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite connection URL; None for other databases and in-memory SQLite."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def build_template(template: Path) -> None:
    """Run Prefect's migrations on an empty file and publish it as `template` (rename: never half-built).

    The journal is switched from WAL to a single file so that the template is one self-contained file.
    """
    template.parent.mkdir(parents=True, exist_ok=True)
    partial = template.with_name(f".{template.name}.{os.getpid()}.partial")
    env = {**os.environ, "PREFECT_API_DATABASE_CONNECTION_URL": f"{SQLITE_PREFIX}{partial}"}
    command = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "--yes"]
    try:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        with closing(sqlite3.connect(partial)) as database:
            database.execute("PRAGMA journal_mode=DELETE")
        os.replace(partial, template)
    finally:
        for leftover in partial.parent.glob(f"{partial.name}*"):
            leftover.unlink()


def seed_database(database: Path, template: Path) -> bool:
    """Copy `template` to `database` if no database is there yet; True when copied.

    An existing database is never replaced: the copy is published with a hard link, which fails when another
    process created the database first. A leftover journal (`-wal`, `-journal`) without its database is not
    applied to a copy either. Where the copy cannot be made (no hard links, disk full), Prefect creates the
    database itself, as without a template.
    """
    journals = [database.with_name(database.name + suffix) for suffix in ("-wal", "-journal")]
    if database.exists() or any(journal.exists() for journal in journals) or not template.is_file():
        return False
    partial = database.with_name(f".{database.name}.{os.getpid()}.partial")
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, partial)
        os.link(partial, database)
    except OSError:
        return False
    finally:
        partial.unlink(missing_ok=True)
    return True


def configured_database() -> Path | None:
    """The SQLite file the Prefect server in this process will use, from Prefect's own settings."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    return sqlite_file(url if isinstance(url, str) else url.get_secret_value())


def serve(uvicorn_args: list[str]) -> None:
    """The temporary server's process: seed its database when it has none, then run uvicorn."""
    database, template = configured_database(), template_path()
    if database is not None and template is not None:
        seed_database(database, template)
    from uvicorn.main import main as uvicorn_main

    uvicorn_main(uvicorn_args, prog_name="uvicorn")


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return
    template = template_path()
    if template is None:
        print(f"Prefect database template: none ({TEMPLATE_ENV} is empty)")
        return
    if not template.is_file():
        build_template(template)
    print(f"Prefect database template: {template}")


if __name__ == "__main__":
    main(sys.argv[1:])
