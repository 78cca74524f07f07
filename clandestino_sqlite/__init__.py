"""The embedded default backend: the control table in a SQLite file (stdlib sqlite3).

The public names are the original `clandestino-sqlite` package's, so migration files it generated
(`from clandestino_sqlite.infra import SQLiteInfra`) keep working.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clandestino_sqlite import ref
    from clandestino_sqlite.infra import SQLiteInfra
    from clandestino_sqlite.repository import SQLiteMigrateRepository

__all__ = ["SQLiteInfra", "SQLiteMigrateRepository", "ref"]

# Loaded on first use: `cdt -m` imports this package for its no-op check, which needs none of them.
_MODULES = {
    "SQLiteInfra": "clandestino_sqlite.infra",
    "SQLiteMigrateRepository": "clandestino_sqlite.repository",
    "ref": "clandestino_sqlite.ref",
}


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(_MODULES[name])
    return module if name == "ref" else getattr(module, name)
