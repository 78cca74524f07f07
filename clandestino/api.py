"""The public async API: one plain function per command, knowing nothing of the command line.

Each call reads the settings afresh, opens one connection, and closes it before returning, so the
functions can be called any number of times in one process and from a running event loop (for
example at application start-up). They raise `ClandestinoError` subclasses rather than exiting.
Events go to `on_event` when given, else to the `clandestino` logger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, overload

from clandestino.backends import DEFAULT_BACKEND, load_backend, resolve_store
from clandestino.config import MIGRATION_REPO, MIGRATIONS_DIR, Settings, load_settings
from clandestino.discovery import MigrationFile, migrations_importable, scan
from clandestino.engine import Engine, RunReport
from clandestino.events import Event, EventSink, RepositoryChosen, Warned
from clandestino.plan import MigrationState, migration_states
from clandestino.store import opened

if TYPE_CHECKING:
    from clandestino.fleet import FleetReport
    from clandestino.fleet.api import FleetOptions
    from clandestino.fleet.sources import FleetChoice
    from clandestino.fleet.targets import Target
    from clandestino.scaffold import CreatedMigration

__all__ = [
    "MigrationState",
    "RunReport",
    "baseline",
    "create",
    "migrate",
    "migrate_database",
    "repair",
    "rollback",
    "status",
]

PathArg = str | Path | None
Confirm = Callable[[list[str]], bool | Awaitable[bool]]


def _log_event(event: object) -> None:
    # Imported here: logging is a tenth of a no-op `cdt -m`, which never logs.
    import logging

    logging.getLogger("clandestino").info("%s", event)


def settings_for(
    migrations_dir: PathArg, backend: str | None, url: str | None, cwd: PathArg
) -> Settings:
    overrides: dict[str, str | None] = {
        MIGRATIONS_DIR: str(migrations_dir) if migrations_dir is not None else None,
        MIGRATION_REPO: backend,
    }
    settings = load_settings(Path(cwd) if cwd is not None else None, overrides=overrides)
    if url is not None:
        name = settings.repository or DEFAULT_BACKEND
        settings = load_settings(
            settings.cwd, overrides={**overrides, load_backend(name).url_setting: url}
        )
    return settings


def scanned(settings: Settings, emit: EventSink) -> list[MigrationFile]:
    """The migration files, after a warning for each file in the folder that is not one."""
    files, strays = scan(settings.migrations_dir)
    for path in strays:
        emit(Warned(f"{path} is not run: migration files are named migration_<stamp>_<name>.py"))
    return files


def announce_store(emit: EventSink, description: str, locking: bool, read_only: bool) -> None:
    emit(RepositoryChosen(description, locking))
    if not locking and not read_only:
        emit(Warned("this repository has no lock: never run two deployers at once"))


@asynccontextmanager
async def _engine(
    settings: Settings, on_event: EventSink | None, read_only: bool
) -> AsyncIterator[Engine]:
    emit = on_event or _log_event
    # The mode line comes first, then what the folder holds that is not a migration.
    strays: list[Event] = []
    files = scanned(settings, strays.append)
    store = resolve_store(settings, [file.name for file in files], read_only)
    announce_store(emit, store.description, store.locking, read_only)
    for warning in strays:
        emit(warning)
    target = the_one_target(settings)
    async with opened(store):
        with migrations_importable(settings.migrations_dir):
            yield Engine(
                store, files, emit, settings.lock_timeout, settings.migration_timeout, target
            )


def the_one_target(settings: Settings) -> Target:
    """What a run without a fleet shows its migrations as `self.target`: a fleet of one."""
    from clandestino.backends import chosen_backend, local_repository_path
    from clandestino.fleet.adapter import single_target

    if local_repository_path(settings).is_file():
        return single_target(settings, None)
    return single_target(settings, load_backend(chosen_backend(settings)))


@overload
async def migrate(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
    strict: bool | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: None = None,
    fleet_options: FleetOptions | None = None,
) -> RunReport: ...


@overload
async def migrate(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
    strict: bool | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice,
    fleet_options: FleetOptions | None = None,
) -> FleetReport: ...


async def migrate(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
    strict: bool | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice | None = None,
    fleet_options: FleetOptions | None = None,
) -> RunReport | FleetReport:
    """Apply every pending migration in order (or up to and including `to`).

    `strict` (default: the CLANDESTINO_STRICT setting) refuses to run, with a PlanError, when an
    applied migration's file is gone or changed, or a pending one sorts before an applied one.

    `fleet` (a `clandestino.fleet.FleetSource`, or a list of target names or Targets) runs the
    migrations on every target of the fleet instead, as `fleet_options` says, and returns a
    per-target FleetReport; a failed target does not raise, its outcome says why.
    """
    settings = settings_for(migrations_dir, backend, url, cwd)
    refuse = settings.strict_source() if strict is None else strict
    if fleet is not None:
        from clandestino.fleet.api import FleetOptions, run_fleet

        if dry_run:
            from clandestino.errors import UsageError

            raise UsageError("a dry run is for one target", "drop dry_run, or name no fleet")
        options = fleet_options or FleetOptions()
        emit = on_event or _log_event
        return await run_fleet(settings, fleet, options, "up", emit, to=to, strict=refuse)
    async with _engine(settings, on_event, read_only=dry_run) as engine:
        return await engine.migrate(to=to, dry_run=dry_run, strict=refuse)


async def baseline(
    to: str,
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
) -> RunReport:
    """Record every migration up to and including `to` as applied without running it: for
    adopting a database whose changes were made before Clandestino looked after it."""
    settings = settings_for(migrations_dir, backend, url, cwd)
    async with _engine(settings, on_event, read_only=False) as engine:
        return await engine.baseline(to)


async def migrate_database(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    to: str | None = None,
    strict: bool | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
) -> RunReport:
    """The original's entry point: `migrate()`, printing the lines `cdt -m` prints (the
    original's `-> running NAME ✅`) to stdout as it goes, warnings to stderr, as the original
    did into its users' application logs. `on_event` replaces the printing."""
    if on_event is None:
        import sys

        from clandestino.output import TextRenderer

        on_event = TextRenderer(sys.stdout, sys.stderr)
    return await migrate(
        migrations_dir=migrations_dir,
        backend=backend,
        url=url,
        to=to,
        strict=strict,
        on_event=on_event,
        cwd=cwd,
    )


@overload
async def rollback(
    steps: int | None = None,
    *,
    to: str | None = None,
    confirm: Confirm | None = None,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: None = None,
    fleet_options: FleetOptions | None = None,
) -> RunReport: ...


@overload
async def rollback(
    steps: int | None = None,
    *,
    to: str | None = None,
    confirm: Confirm | None = None,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice,
    fleet_options: FleetOptions | None = None,
) -> FleetReport: ...


async def rollback(
    steps: int | None = None,
    *,
    to: str | None = None,
    confirm: Confirm | None = None,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice | None = None,
    fleet_options: FleetOptions | None = None,
) -> RunReport | FleetReport:
    """Undo the last applied migration, the last `steps`, or all applied after `to`.

    `confirm` receives the names to undo, most recent first, before anything changes; when it
    returns False nothing is done and the report says `cancelled`.

    With `fleet`, on every target of the fleet (as `cdt -rm --fleet`): `confirm` receives the
    targets' names, once for the whole fleet; returns a per-target FleetReport.
    """
    settings = settings_for(migrations_dir, backend, url, cwd)
    if fleet is not None:
        from clandestino.fleet.api import FleetOptions, rollback_fleet

        return await rollback_fleet(
            settings,
            fleet,
            fleet_options or FleetOptions(),
            on_event or _log_event,
            steps=steps,
            to=to,
            confirm=_as_async(confirm),
        )
    async with _engine(settings, on_event, read_only=False) as engine:
        return await engine.rollback(steps, to, _as_async(confirm))


async def repair(
    *,
    confirm: Confirm | None = None,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
) -> list[str]:
    """Clear the markers that interrupted steps left, after the user has checked the database,
    and accept changed files' current content as the one applied.

    An interrupted up() becomes pending again; an interrupted down() leaves its migration applied.
    `confirm` receives the names first. Returns the names repaired.
    """
    settings = settings_for(migrations_dir, backend, url, cwd)
    async with _engine(settings, on_event, read_only=False) as engine:
        return await engine.repair(_as_async(confirm))


@overload
async def status(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: None = None,
    fleet_options: FleetOptions | None = None,
) -> list[MigrationState]: ...


@overload
async def status(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice,
    fleet_options: FleetOptions | None = None,
) -> FleetReport: ...


async def status(
    *,
    migrations_dir: PathArg = None,
    backend: str | None = None,
    url: str | None = None,
    on_event: EventSink | None = None,
    cwd: PathArg = None,
    fleet: FleetChoice | None = None,
    fleet_options: FleetOptions | None = None,
) -> list[MigrationState] | FleetReport:
    """Every migration with its state; changes nothing, not even an empty control table.

    With `fleet`, the matrix of `cdt -lm --fleet`: a FleetReport whose outcomes carry each
    target's `state` (applied, pending, changed, missing, interrupted counts).
    """
    settings = settings_for(migrations_dir, backend, url, cwd)
    if fleet is not None:
        from clandestino.fleet.api import FleetOptions, run_fleet

        options = fleet_options or FleetOptions()
        return await run_fleet(settings, fleet, options, "status", on_event or _log_event)
    async with _engine(settings, on_event, read_only=True) as engine:
        return migration_states(await engine.plan())


async def create(
    name: str,
    template: str | None = None,
    *,
    migrations_dir: PathArg = None,
    cwd: PathArg = None,
) -> CreatedMigration:
    """Write a new migration file from the template of backend `template` (or the empty one)."""
    from clandestino.scaffold import create_migration_file

    settings = settings_for(migrations_dir, None, None, cwd)
    return create_migration_file(settings.migrations_dir, name, template)


def _as_async(confirm: Confirm | None) -> Callable[[list[str]], Awaitable[bool]] | None:
    from inspect import isawaitable

    if confirm is None:
        return None

    async def confirmed(names: list[str]) -> bool:
        answer = confirm(names)
        return bool(await answer) if isawaitable(answer) else bool(answer)

    return confirmed
