"""Turning a fleet's source (file, query, callable) and the filters (--target, --only, --failed)
into the list of targets to run."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path

from clandestino.config import Settings
from clandestino.errors import ConfigurationError, UsageError
from clandestino.fleet.adapter import FleetAdapter
from clandestino.fleet.targets import (
    TARGETS,
    TARGETS_FROM,
    TARGETS_QUERY,
    FleetSource,
    Target,
    TargetLine,
    lines_from,
    read_target_file,
)

__all__ = ["FleetChoice", "choose", "source_from_settings", "targets_of"]

FleetChoice = FleetSource | Sequence[Target | TargetLine | str]


def source_from_settings(settings: Settings) -> FleetSource:
    """The fleet the settings name, when no source was given explicitly."""
    file = settings.get(TARGETS)
    return FleetSource(
        file=settings.cwd / file if file else None,
        query=settings.get(TARGETS_QUERY),
        callable=settings.get(TARGETS_FROM),
    )


async def targets_of(settings: Settings, adapter: FleetAdapter, fleet: FleetChoice) -> list[Target]:
    if isinstance(fleet, FleetSource):
        if fleet.query is not None:
            return await adapter.find(settings, fleet.query)
        if fleet.file is not None:
            given: Sequence[Target | TargetLine | str] = read_target_file(
                settings.cwd / Path(fleet.file)
            )
        else:
            given = await _called(str(fleet.callable), settings.cwd)
    else:
        given = fleet
    return _checked([_as_target(settings, adapter, item) for item in given])


def _as_target(
    settings: Settings, adapter: FleetAdapter, item: Target | TargetLine | str
) -> Target:
    if isinstance(item, Target):
        return item
    line = TargetLine(item) if isinstance(item, str) else item
    return adapter.target(settings, line.name, line.url)


def _checked(targets: list[Target]) -> list[Target]:
    names = [target.name for target in targets]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigurationError(f"the fleet names {', '.join(twice)} twice", "give each once")
    return targets


async def _called(spec: str, cwd: Path) -> list[Target | TargetLine]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"{TARGETS_FROM}={spec!r} is not module:function", "e.g. myapp.tenants:list_tenants"
        )
    import sys

    # The working directory, as `python -m` would have it: `cdt` is a script in the venv.
    sys.path.insert(0, str(cwd))
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot load {spec}: {exc}", "check the module is importable from here"
        ) from exc
    finally:
        sys.path.remove(str(cwd))
    result = function()
    if inspect.isawaitable(result):
        result = await result
    return lines_from(result, spec)


def choose(
    targets: list[Target],
    settings: Settings,
    *,
    target: str | None = None,
    only: Sequence[str] | None = None,
    failed: Sequence[str] | None = None,
) -> list[Target]:
    """The targets `--target`, `--only` and `--failed` leave, in the fleet's order; a name that
    is not in the fleet is a usage error, so a typo never runs nothing quietly. `failed`: the
    targets whose last fleet outcome was a failure, when `--failed` asks for them."""
    wanted: set[str] | None = None
    named = ([target] if target else []) + list(only or [])
    if named:
        unknown = sorted(set(named) - {t.name for t in targets})
        if unknown:
            raise UsageError(
                f"not in the fleet: {', '.join(unknown)}", "check the names against the targets"
            )
        wanted = set(named)
    if failed is not None:
        last = set(failed)
        wanted = last if wanted is None else wanted & last
    return targets if wanted is None else [t for t in targets if t.name in wanted]
