"""Clandestino: database migrations for async Python, applied exactly once and in order.

    from clandestino import migrate
    await migrate()

The API functions are imported on first use, so `import clandestino` (and `cdt -h`) stays cheap
and touches no database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clandestino.errors import (
    BackendNotInstalled,
    ClandestinoError,
    ConfigurationError,
    DatabaseUnavailable,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    PlanError,
    UnfinishedMigration,
    UsageError,
)

if TYPE_CHECKING:
    from clandestino.api import (
        MigrationState,
        RunReport,
        baseline,
        create,
        migrate,
        migrate_database,
        repair,
        rollback,
        status,
    )

__all__ = [
    "BackendNotInstalled",
    "ClandestinoError",
    "ConfigurationError",
    "DatabaseUnavailable",
    "LockTimeout",
    "MigrationFailed",
    "MigrationFileError",
    "MigrationState",
    "PlanError",
    "RunReport",
    "UnfinishedMigration",
    "UsageError",
    "baseline",
    "create",
    "migrate",
    "migrate_database",
    "repair",
    "rollback",
    "status",
]

_FROM_API = {
    "MigrationState",
    "RunReport",
    "baseline",
    "create",
    "migrate",
    "migrate_database",
    "repair",
    "rollback",
    "status",
}


def __getattr__(name: str) -> Any:
    if name in _FROM_API:
        from clandestino import api

        return getattr(api, name)
    raise AttributeError(f"module 'clandestino' has no attribute {name!r}")
