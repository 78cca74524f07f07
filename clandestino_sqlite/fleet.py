"""SQLite targets: one database file each, named by the file's stem unless the file says."""

from __future__ import annotations

from pathlib import Path

from clandestino.config import Settings
from clandestino.fleet.adapter import with_values
from clandestino.fleet.targets import Target
from clandestino_sqlite.backend import SQLITE_DB_PATH

__all__ = ["SqliteFleet", "adapter"]

FILE = "sqlite-file"


class SqliteFleet:
    def target(self, settings: Settings, name: str, url: str | None) -> Target:
        return Target(name, FILE, url or f"{name}.db")

    def settings_for(self, settings: Settings, target: Target) -> Settings:
        return with_values(settings, **{SQLITE_DB_PATH: target.url or f"{target.name}.db"})

    def single(self, settings: Settings) -> Target:
        from clandestino_sqlite.backend import database_path

        path = database_path(settings)
        return Target(path.stem, FILE, str(path))

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """Files matching the glob `pattern`, relative to the working directory."""
        found = sorted(path for path in settings.cwd.glob(pattern) if path.is_file())
        return [Target(_name(path), FILE, str(path)) for path in found]


def _name(path: Path) -> str:
    return path.stem


adapter = SqliteFleet()
