"""The embedded default backend: the control table in a SQLite file (stdlib sqlite3).

The public names are the original `clandestino-sqlite` package's, so migration files it generated
(`from clandestino_sqlite.infra import SQLiteInfra`) keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clandestino.lazy import lazy_names

if TYPE_CHECKING:
    from clandestino_sqlite import ref
    from clandestino_sqlite.infra import SQLiteInfra
    from clandestino_sqlite.repository import SQLiteMigrateRepository

__all__ = ["SQLiteInfra", "SQLiteMigrateRepository", "ref"]

__getattr__ = lazy_names(
    __name__,
    {
        "SQLiteInfra": "clandestino_sqlite.infra",
        "SQLiteMigrateRepository": "clandestino_sqlite.repository",
        "ref": "clandestino_sqlite.ref",
    },
)
