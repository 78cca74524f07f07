"""The fleet's side of the public API: `migrate(fleet=...)`, `rollback(fleet=...)`,
`status(fleet=...)` land here, and so does `cdt --fleet`: one code path for both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from clandestino.backends import DEFAULT_BACKEND, Backend, load_backend, local_repository_path
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.events import EventSink, RepositoryChosen, Warned
from clandestino.fleet.adapter import adapter_for
from clandestino.fleet.commands import migrate_command, rollback_command, status_command
from clandestino.fleet.report import FleetDirection, FleetReport
from clandestino.fleet.runner import Command, FleetRunner, OnError
from clandestino.fleet.sources import FleetChoice, choose, source_from_settings, targets_of
from clandestino.fleet.state import fleet_state
from clandestino.fleet.targets import Target

__all__ = ["FleetOptions", "fleet_targets", "rollback_fleet", "run_fleet"]

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class FleetOptions:
    """How to run a fleet: how many targets at once, whether a failure stops the others, and
    which of its targets (`target`, `only`, the ones that `failed` last time)."""

    concurrency: int = DEFAULT_CONCURRENCY
    on_error: OnError = "continue"
    target: str | None = None
    only: Sequence[str] | None = None
    failed: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError(
                f"concurrency {self.concurrency} is not a number of targets at once",
                "use 1 or more",
            )
        if self.on_error not in ("continue", "stop"):
            raise ConfigurationError(f"on_error={self.on_error!r}", "use continue or stop")


async def fleet_targets(
    settings: Settings, fleet: FleetChoice | None, options: FleetOptions
) -> list[Target]:
    adapter = adapter_for(_backend(settings))
    source = fleet or source_from_settings(settings)
    everything = await targets_of(settings, adapter, source)
    failed: list[str] | None = None
    if options.failed:
        state = fleet_state(adapter, settings, source)
        try:
            failed = list(await state.failed())
        finally:
            await state.aclose()
    return choose(everything, settings, target=options.target, only=options.only, failed=failed)


async def run_fleet(
    settings: Settings,
    fleet: FleetChoice | None,
    options: FleetOptions,
    direction: FleetDirection,
    emit: EventSink,
    *,
    to: str | None = None,
    steps: int | None = None,
    strict: bool | str = False,
    targets: list[Target] | None = None,
) -> FleetReport:
    """Run `direction` (up, down, status) on every chosen target of the fleet."""
    from clandestino.api import scanned
    from clandestino.discovery import migrations_importable

    backend = _backend(settings)
    adapter = adapter_for(backend)
    chosen = targets if targets is not None else await fleet_targets(settings, fleet, options)
    read_only = direction == "status"
    emit(RepositoryChosen(f"{backend.name.upper()} fleet of {len(chosen)} targets", True))
    files = scanned(settings, emit)
    command: Command
    if direction == "up":
        command = migrate_command(to, strict)
    elif direction == "down":
        command = rollback_command(steps, to)
    else:
        command = status_command()
    runner = FleetRunner(
        settings,
        backend,
        adapter,
        files,
        emit,
        concurrency=options.concurrency,
        on_error=options.on_error,
        read_only=read_only,
        state=None
        if read_only
        else fleet_state(adapter, settings, fleet or source_from_settings(settings)),
    )
    if not chosen:
        emit(Warned("the fleet has no targets (check the targets file, query or --only)"))
    with migrations_importable(settings.migrations_dir):
        report = await runner.run(chosen, direction, command)
    return report


async def rollback_fleet(
    settings: Settings,
    fleet: FleetChoice | None,
    options: FleetOptions,
    emit: EventSink,
    *,
    steps: int | None = None,
    to: str | None = None,
    confirm: Callable[[list[str]], Awaitable[bool]] | None = None,
) -> FleetReport:
    """Roll back on every chosen target, after `confirm` (given the targets' names) said yes
    once for the whole fleet; a no changes nothing and the report says `cancelled`."""
    chosen = await fleet_targets(settings, fleet, options)
    if chosen and confirm is not None and not await confirm([t.name for t in chosen]):
        return FleetReport("down", cancelled=True)
    return await run_fleet(
        settings, fleet, options, "down", emit, steps=steps, to=to, targets=chosen
    )


def _backend(settings: Settings) -> Backend:
    if local_repository_path(settings).is_file():
        raise ConfigurationError(
            "a fleet needs a backend that knows its targets, not migrations/repository.py",
            "set CLANDESTINO_MIGRATION_REPO to postgres, mongo, elasticsearch or sqlite",
        )
    return load_backend(settings.repository or DEFAULT_BACKEND)
