"""Fleets: one command over many targets (tenant schemas, databases, index prefixes, files).

A target is one place with its own control records and lock. `targets` says what a target is and
reads a fleet from a file, a query against the store or a Python callable; `runner` schedules one
engine per target with bounded concurrency and shares a fleet with other runners through the
targets' own locks; `report` is what a fleet run returns; `render` shows it; `state` remembers
which targets failed last time. Nothing here is imported by `import clandestino`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clandestino.fleet.api import FleetOptions
    from clandestino.fleet.report import FleetReport, TargetOutcome, TargetStatus
    from clandestino.fleet.targets import FleetSource, Target

__all__ = ["FleetOptions", "FleetReport", "FleetSource", "Target", "TargetOutcome", "TargetStatus"]

_HOMES = {
    "FleetOptions": "clandestino.fleet.api",
    "FleetReport": "clandestino.fleet.report",
    "TargetOutcome": "clandestino.fleet.report",
    "TargetStatus": "clandestino.fleet.report",
    "FleetSource": "clandestino.fleet.targets",
    "Target": "clandestino.fleet.targets",
}


def __getattr__(name: str) -> Any:
    # Lazily, so that `cdt`'s parser can import clandestino.fleet.options for nothing.
    import importlib

    if name not in _HOMES:
        raise AttributeError(f"module 'clandestino.fleet' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
