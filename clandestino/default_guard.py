"""Refusing the SQLite default when something says another database was meant.

With no repository chosen, the records would go to a new local `clandestino.db` while the
migrations change another database: run again after fixing the setting, and they run twice.
So the default is used only when nothing points elsewhere: no setting whose name is a near miss of
one of ours, no other backend's connection string, no migration importing another backend's infra.
"""

from __future__ import annotations

import re

from clandestino.config import KNOWN_SETTINGS, MIGRATION_REPO, Settings
from clandestino.errors import ConfigurationError

__all__ = ["refuse_a_doubtful_default"]

_CONNECTION_SETTINGS = {
    "CLANDESTINO_POSTGRES_CONNECTION_STRING": "POSTGRES",
    "CLANDESTINO_MONGO_CONNECTION_STRING": "MONGO",
    "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": "ELASTICSEARCH",
    "CLANDESTINO_OPENSEARCH_CONNECTION_STRING": "OPENSEARCH",
}
_INFRA_IMPORT = re.compile(
    rb"^[ \t]*(?:from|import)[ \t]+clandestino_(postgres|mongo|elasticsearch|opensearch)\b",
    re.MULTILINE,
)
# 0.89: CLANDESTINO_MIGRATION_REPOSITORY (0.90) is a miss; a test suite's own
# CLANDESTINO_TEST_ELASTICSEARCH_URL (0.875) is not.
_NEAR = 0.89


def refuse_a_doubtful_default(settings: Settings) -> None:
    """Raise a ConfigurationError naming what points away from the SQLite default, if anything."""
    for check in (_near_miss, _connection_string, _infra_import):
        found = check(settings)
        if found:
            raise ConfigurationError(
                f"no repository is chosen, but {found}; the SQLite default would record the "
                "migrations apart from the database they change",
                f"set {MIGRATION_REPO} (POSTGRES, MONGO, ELASTICSEARCH, OPENSEARCH or SQLITE)",
            )


def _near_miss(settings: Settings) -> str | None:
    for name in sorted(settings.values):
        upper = name.upper()
        if name in KNOWN_SETTINGS or not upper.startswith("CLANDESTIN"):
            continue
        # Imported here: difflib is a few milliseconds, and most runs have no unknown name.
        from difflib import get_close_matches

        close = get_close_matches(upper, KNOWN_SETTINGS, n=1, cutoff=_NEAR)
        if close:
            return f"{name} (from {settings.source(name)}) looks like a misspelt {close[0]}"
    return None


def _connection_string(settings: Settings) -> str | None:
    for name, backend in _CONNECTION_SETTINGS.items():
        if settings.get(name):
            return f"{name} is set (from {settings.source(name)}), which is for {backend}"
    return None


def _infra_import(settings: Settings) -> str | None:
    """A look at the text of the migration files, without importing them; only while the SQLite
    default has no database yet. Once it has one, the default was taken on an earlier run, and
    reading every file on every run would cost a no-op run a tenth of its time."""
    from clandestino_sqlite.backend import database_path

    folder = settings.migrations_dir
    if not folder.is_dir() or database_path(settings).exists():
        return None
    for path in sorted(folder.glob("migration*.py")):
        try:
            match = _INFRA_IMPORT.search(path.read_bytes())
        except OSError:
            continue
        if match:
            backend = match[1].decode().upper()
            return f"{path.name} imports clandestino_{match[1].decode()}, which is for {backend}"
    return None
