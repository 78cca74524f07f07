"""The SQLite backend as the `clandestino.backends` entry point sees it. Imports no sqlite3."""

from __future__ import annotations

from pathlib import Path

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.store import ControlStore, Snapshot

__all__ = ["SQLITE_DB_PATH", "backend", "database_path"]

SQLITE_DB_PATH = "CLANDESTINO_SQLITE_DB_PATH"
DEFAULT_DB_PATH = "clandestino.db"


def database_path(settings: Settings) -> Path:
    """The database file: a path, or a `sqlite:///path` URL, relative to the working directory."""
    raw = settings.get(SQLITE_DB_PATH, DEFAULT_DB_PATH) or DEFAULT_DB_PATH
    if raw.startswith("sqlite:") and not raw.startswith("sqlite:///"):
        raise ConfigurationError(
            f"{SQLITE_DB_PATH}={raw!r} is not a SQLite URL",
            "use a path, sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    path = settings.cwd / Path(raw.removeprefix("sqlite:///")).expanduser()
    if not path.parent.is_dir():
        # sqlite3 would say "unable to open database file", which reads as a permissions problem.
        missing = next(p for p in reversed([path.parent, *path.parent.parents]) if not p.is_dir())
        raise ConfigurationError(
            f"{SQLITE_DB_PATH}={raw} (from {settings.source(SQLITE_DB_PATH)}): "
            f"the folder {missing} does not exist",
            "create the folder, or point the setting at one that exists",
        )
    return path


def _read_snapshot(settings: Settings) -> Snapshot | None:
    from clandestino_sqlite.records import read_snapshot

    return read_snapshot(settings)


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    from clandestino_sqlite.store import SqliteStore

    return SqliteStore(database_path(settings), settings.control_table, read_only)


backend = Backend(
    name="sqlite",
    url_setting=SQLITE_DB_PATH,
    template_module="clandestino_sqlite.ref",
    fleet="clandestino_sqlite.fleet:adapter",
    create_store=_create_store,
    read_snapshot=_read_snapshot,
)
