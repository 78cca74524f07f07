"""SQLite targets: one database file each, named by the file's stem unless the file says."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clandestino.config import Settings
from clandestino.fleet.adapter import with_values
from clandestino.fleet.targets import Target
from clandestino_sqlite.backend import SQLITE_DB_PATH

if TYPE_CHECKING:
    from clandestino.fleet.sources import FleetChoice
    from clandestino_sqlite.fleet_state import SqliteFleetState

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

    def state(self, settings: Settings, source: FleetChoice | None) -> SqliteFleetState | None:
        """The fleet's outcomes, in a file beside the targets file or in the glob's folder:
        where the targets are. A fleet from a callable or a list has no such place (None: the
        local file in the working directory)."""
        from clandestino.fleet.targets import FleetSource
        from clandestino_sqlite.fleet_state import STATE_FILE, SqliteFleetState

        if not isinstance(source, FleetSource):
            return None
        if source.file is not None:
            return SqliteFleetState((settings.cwd / source.file).parent / STATE_FILE)
        if source.query is not None:
            return SqliteFleetState(settings.cwd / _fixed_part(source.query) / STATE_FILE)
        return None

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """Files matching the glob `pattern`, relative to the working directory (the fleet's
        own outcomes file left out)."""
        from clandestino_sqlite.fleet_state import STATE_FILE

        found = sorted(
            path
            for path in settings.cwd.glob(pattern)
            if path.is_file() and path.name != STATE_FILE
        )
        return [Target(_name(path), FILE, str(path)) for path in found]


def _fixed_part(pattern: str) -> Path:
    """The folder a glob looks in: its leading parts without a wildcard."""
    parts = Path(pattern).parts[:-1]
    fixed = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return Path(*fixed)


def _name(path: Path) -> str:
    return path.stem


adapter = SqliteFleet()
