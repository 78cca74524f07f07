"""The last fleet outcome of each target, for `--failed`: kept where every runner of the fleet
sees it, so a runner on another machine re-runs exactly the targets another runner failed.

A backend's fleet adapter may offer `state(settings, source) -> FleetState`: a place in the
fleet's own store (a PostgreSQL table, a MongoDB collection, a hidden Elasticsearch index, a
SQLite file beside the targets file). Each runner writes a target's outcome there as the target
finishes (one upsert), and `--failed` reads it. The place is never a target's control table, so
neither this tool nor the original one ever lists it as a migration.

Where the adapter offers none (a plug-in without it, SQLite targets from a callable or a list),
or CLANDESTINO_FLEET_STATE names a file, the outcomes go to that local JSON file
(`.clandestino-fleet.json` in the working directory), which only runners sharing the directory
see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.fleet.report import TargetOutcome

if TYPE_CHECKING:
    from clandestino.fleet.adapter import FleetAdapter
    from clandestino.fleet.sources import FleetChoice

__all__ = ["FLEET_STATE", "FleetState", "LocalFleetState", "fleet_state", "state_path"]

FLEET_STATE = "CLANDESTINO_FLEET_STATE"
DEFAULT_STATE = ".clandestino-fleet.json"
# The shared place's name in the fleet's store: a table, a collection, an index.
STATE_TABLE = "clandestino_fleet"


class FleetState(Protocol):
    description: str

    async def failed(self) -> dict[str, str]:
        """Each target whose last fleet outcome was a failure, with its error."""
        ...

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        """Keep `outcome` as its target's last (an upsert by the target's name)."""
        ...

    async def aclose(self) -> None: ...


def state_path(settings: Settings) -> Path:
    return settings.path(FLEET_STATE, DEFAULT_STATE)


def fleet_state(
    adapter: FleetAdapter, settings: Settings, source: FleetChoice | None
) -> FleetState:
    """Where this fleet's outcomes are kept: the adapter's shared place, unless
    CLANDESTINO_FLEET_STATE names a file or the adapter has no shared place for this source."""
    shared = getattr(adapter, "state", None)
    if settings.get(FLEET_STATE) is None and shared is not None:
        found: FleetState | None = shared(settings, source)
        if found is not None:
            return found
    return LocalFleetState(state_path(settings))


class LocalFleetState:
    """A JSON file of the failed targets: seen only by runners that share its directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the local file {path}"

    async def failed(self) -> dict[str, str]:
        return read_failed(self.path)

    async def record(self, outcome: TargetOutcome, runner: str) -> None:
        failed = read_failed(self.path)
        if outcome.status == "failed":
            failed[outcome.target] = outcome.error or "failed"
        else:
            failed.pop(outcome.target, None)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"failed": dict(sorted(failed.items()))}, indent=1) + "\n")
        # A rename, so a runner reading the file never sees half of it.
        partial.replace(self.path)

    async def aclose(self) -> None:
        return None


def read_failed(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        failed = json.loads(path.read_text(encoding="utf-8")).get("failed", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot read the fleet's state in {path}: {exc}", "delete the file to start afresh"
        ) from exc
    return {str(name): str(error) for name, error in dict(failed).items()}
