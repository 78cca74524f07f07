"""The PostgreSQL backend on asyncpg.

The public names are the original `clandestino-postgres` package's, so migration files it generated
(`from clandestino_postgres.infra import PostgresInfra`) keep working. Importing this package does
not import asyncpg; using it does.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clandestino_postgres import ref
    from clandestino_postgres.infra import PostgresInfra
    from clandestino_postgres.repository import PostgresMigrateRepository

__all__ = ["PostgresInfra", "PostgresMigrateRepository", "ref"]

# Loaded on first use: `cdt -m` imports this package for its no-op check, which needs none of them.
_MODULES = {
    "PostgresInfra": "clandestino_postgres.infra",
    "PostgresMigrateRepository": "clandestino_postgres.repository",
    "ref": "clandestino_postgres.ref",
}


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(_MODULES[name])
    return module if name == "ref" else getattr(module, name)
