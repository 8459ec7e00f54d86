"""A new PREFECT_HOME's database copied from a migrated template instead of built by Prefect's migrations.

Why: on a new PREFECT_HOME the temporary server first runs Prefect's 114 Alembic migrations on an empty SQLite
file. Profiled on a 2-core machine that is 7.6 s of SQLAlchemy reflection inside `batch_alter_table`, every time
a user, a test or a scheduled job starts from a new home; the result is the same empty schema each time.
`make install` builds that schema once per environment (`python -m flows.database_template`, next to the Prefect
it belongs to), and the temporary server's process (flows/temporary_server.py) copies it into a home that has no
database yet, as PostgreSQL creates databases from `template1`. Prefect still runs its migrations at start-up;
on the copy they find nothing to do. Without a template (a plain `pip install`) nothing changes: Prefect
migrates as usual.
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

from mnist_pipeline.files.atomic import atomic_path

SQLITE_PREFIX = "sqlite+aiosqlite:///"
TEMPLATE_ENV = "MNIST_PIPELINE_PREFECT_TEMPLATE"


def find_template() -> Path | None:
    """Where this environment keeps the template: beside the installed Prefect, one per Prefect version.

    TEMPLATE_ENV names another file instead, or, set empty, turns seeding off (Prefect then migrates as usual).
    """
    chosen = os.environ.get(TEMPLATE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen else None
    return Path(sys.prefix) / "share" / "mnist-pipeline" / f"prefect-{version('prefect')}.db"


def parse_sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite connection URL; None for other databases and in-memory SQLite."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def build_template(template: Path) -> None:
    """Run Prefect's migrations on an empty file and publish it as `template` (`atomic_path`: never half-built).

    The database is named with Prefect's current setting, and its older spelling is removed, so that no other
    database configured in the environment is migrated instead. The journal is switched from WAL to a single
    file so that the template is one self-contained file, and it is checked to be at Prefect's newest schema.
    """
    env = {key: value for key, value in os.environ.items() if not key.endswith("DATABASE_CONNECTION_URL")}
    command = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "--yes"]
    with atomic_path(template) as partial:
        try:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"{SQLITE_PREFIX}{partial}"
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            with closing(sqlite3.connect(partial)) as database:
                (journal,) = database.execute("PRAGMA journal_mode=DELETE").fetchone()
                revision = database.execute("SELECT version_num FROM alembic_version").fetchone()
            if journal != "delete" or revision is None or revision[0] != newest_revision():
                found = f"{journal}, {revision}"
                raise RuntimeError(f"{partial}: expected Prefect's newest schema in one file, found {found}")
        finally:  # SQLite's own side files of a failed or interrupted build
            for suffix in ("-wal", "-shm", "-journal"):
                partial.with_name(partial.name + suffix).unlink(missing_ok=True)


def newest_revision() -> str:
    """The head of Prefect's SQLite migrations, the revision a fully migrated database records."""
    import prefect.server.database
    from alembic.script import ScriptDirectory

    migrations = Path(prefect.server.database.__file__).parent / "_migrations"
    scripts = ScriptDirectory(str(migrations), version_locations=[str(migrations / "versions" / "sqlite")])
    (head,) = scripts.get_heads()
    return str(head)


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


def find_configured_database() -> Path | None:
    """The SQLite file the Prefect server in this process will use, from Prefect's own settings."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    return parse_sqlite_file(url if isinstance(url, str) else url.get_secret_value())


def main() -> None:
    """`python -m flows.database_template` (run by `make install`): build this environment's template if missing."""
    template = find_template()
    if template is None:
        print(f"Prefect database template: none ({TEMPLATE_ENV} is empty)")
        return
    if not template.is_file():
        build_template(template)
    print(f"Prefect database template: {template}")


if __name__ == "__main__":
    main()
