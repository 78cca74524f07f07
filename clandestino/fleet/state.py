"""Which targets failed in the last fleet runs, for `--failed`: a small JSON file in the working
directory (CLANDESTINO_FLEET_STATE). Each run removes the targets it finished well and adds the
ones it failed, so runners sharing a directory keep one another's failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.fleet.report import FleetReport

__all__ = ["FLEET_STATE", "failed_targets", "remember", "state_path"]

FLEET_STATE = "CLANDESTINO_FLEET_STATE"
DEFAULT_STATE = ".clandestino-fleet.json"


def state_path(settings: Settings) -> Path:
    return settings.path(FLEET_STATE, DEFAULT_STATE)


def failed_targets(settings: Settings) -> dict[str, str]:
    """Each target whose last fleet run failed, with its error."""
    path = state_path(settings)
    if not path.is_file():
        return {}
    try:
        failed = json.loads(path.read_text(encoding="utf-8")).get("failed", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot read the fleet's state in {path}: {exc}", "delete the file to start afresh"
        ) from exc
    return {str(name): str(error) for name, error in dict(failed).items()}


def remember(settings: Settings, report: FleetReport) -> None:
    failed = failed_targets(settings)
    for outcome in report.outcomes:
        if outcome.status == "failed":
            failed[outcome.target] = outcome.error or "failed"
        elif outcome.status != "not_run":
            failed.pop(outcome.target, None)
    path = state_path(settings)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"failed": dict(sorted(failed.items()))}, indent=1) + "\n")
    # A rename, so a runner reading the file never sees half of it.
    partial.replace(path)
