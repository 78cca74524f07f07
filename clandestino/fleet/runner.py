"""Scheduling one engine per target, a bounded number at a time, alongside other runners.

K workers take targets in order, each opening the target's store, running the command and closing
it again, so at most K targets hold connections at once however large the fleet is. The stores
borrow their connections from one pool or client per server (the adapter's `servers`), so a
fleet of any size opens at most K connections to a server, not one per target. A target
whose lock is held (another runner is at it) is tried with a lock timeout of zero, which every
store answers at once, and is set aside; once every other target is done the runner comes back to
the set-aside ones and waits for their locks as a single run would. Several runners thus share a
fleet with no coordinator but the targets' own locks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.discovery import MigrationFile
from clandestino.engine import Engine
from clandestino.errors import ClandestinoError, LockTimeout
from clandestino.events import Event, EventSink, LockWaiting, Warned
from clandestino.fleet.adapter import FleetAdapter, servers_for
from clandestino.fleet.events import (
    FleetFinished,
    FleetStarted,
    OnTarget,
    TargetDeferred,
    TargetDone,
)
from clandestino.fleet.report import FleetDirection, FleetReport, TargetOutcome
from clandestino.fleet.servers import OwnConnections, SharedServers
from clandestino.fleet.state import FleetState
from clandestino.fleet.targets import Target
from clandestino.identity import deployer_identity
from clandestino.lease import renewal_host
from clandestino.store import ControlStore, WaitCallback, opened

if TYPE_CHECKING:
    from clandestino_interfaces import AbstractMigration

__all__ = ["Command", "FleetRunner", "OnError"]

OnError = Literal["continue", "stop"]
# What to do with one target's engine; returns the outcome's fields the command decides.
Command = Callable[[Engine, "Visit"], Awaitable[None]]


@dataclass
class Visit:
    """One target's run, as the command fills it in."""

    target: Target
    outcome: TargetOutcome
    # Set when the engine asked for the lock: the target had work when it was first read.
    took_lock: bool = False


class FleetRunner:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        adapter: FleetAdapter,
        files: list[MigrationFile],
        emit: EventSink,
        *,
        concurrency: int = 4,
        on_error: OnError = "continue",
        read_only: bool = False,
        state: FleetState | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._adapter = adapter
        self._files = files
        self._emit = emit
        self._concurrency = max(1, concurrency)
        self._on_error = on_error
        self._read_only = read_only
        self._classes: dict[str, type[AbstractMigration]] = {}
        self._stopping = False
        self._servers: SharedServers = OwnConnections(backend)
        # Where each finished target's outcome goes, for `--failed` on any runner.
        self._state = state
        self._state_warned = False

    async def run(
        self, targets: list[Target], direction: FleetDirection, command: Command
    ) -> FleetReport:
        started = time.perf_counter()
        report = FleetReport(direction)
        self._emit(cast(Event, FleetStarted(str(direction), len(targets), self._concurrency)))
        outcomes: dict[str, TargetOutcome] = {}
        deferred: list[Target] = []
        self._servers = servers_for(self._adapter, self._backend, self._settings, self._concurrency)
        try:
            # One lease-renewal thread, loop and client per server for the whole run (stores
            # with lease locks), not one per target held.
            with renewal_host():
                await self._pass(iter(targets), command, outcomes, deferred, first=True)
                # Every other target is done: now wait for the ones another runner held.
                await self._pass(iter(deferred), command, outcomes, [], first=False)
        finally:
            await self._servers.aclose()
            if self._state is not None:
                await self._state.aclose()
        report.outcomes = [outcomes[target.name] for target in targets]
        report.seconds = time.perf_counter() - started
        self._emit(cast(Event, FleetFinished(report)))
        return report

    async def _pass(
        self,
        targets: Iterator[Target],
        command: Command,
        outcomes: dict[str, TargetOutcome],
        deferred: list[Target],
        first: bool,
    ) -> None:
        # A read-only command takes no lock, so it has nothing to set aside.
        try_only = first and not self._read_only

        async def worker() -> None:
            # One shared iterator: each worker takes the next target when it is free.
            for target in targets:
                if self._stopping:
                    outcomes[target.name] = TargetOutcome(target.name, target.kind, "not_run")
                    self._emit(cast(Event, TargetDone(outcomes[target.name])))
                    continue
                outcome = await self._visit(target, command, try_only, came_back=not first)
                if outcome is None:
                    deferred.append(target)
                    self._emit(cast(Event, TargetDeferred(target.name)))
                    continue
                outcomes[target.name] = outcome
                await self._remember(outcome)
                if outcome.status == "failed" and self._on_error == "stop":
                    self._stopping = True
                self._emit(cast(Event, TargetDone(outcome)))

        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(worker())

    async def _remember(self, outcome: TargetOutcome) -> None:
        if self._state is None:
            return
        try:
            await self._state.record(outcome, deployer_identity())
        except Exception as exc:
            # The target's own run is done either way; only `--failed` loses sight of it.
            if not self._state_warned:
                self._state_warned = True
                self._emit(
                    Warned(
                        f"cannot keep the fleet's outcomes in {self._state.description}:"
                        f" {type(exc).__name__}: {exc} (--failed will not know of this run)"
                    )
                )

    async def _visit(
        self, target: Target, command: Command, try_only: bool, came_back: bool
    ) -> TargetOutcome | None:
        """The target's outcome, or None when its lock was held and `try_only` says move on."""
        began = time.perf_counter()
        visit = Visit(target, TargetOutcome(target.name, target.kind, "up_to_date"))
        visit.outcome.deferred = came_back

        def emit(event: Event) -> None:
            # A try at the lock that finds it held is no wait worth telling.
            if not (try_only and isinstance(event, LockWaiting)):
                self._emit(cast(Event, OnTarget(target.name, event)))

        try:
            settings = self._adapter.settings_for(self._settings, target)
            store = self._servers.create_store(settings, target, self._read_only)
            async with opened(store):
                watched = _LockWatch(store, visit)
                engine = Engine(
                    cast(ControlStore, watched),
                    self._files,
                    emit,
                    0.0 if try_only else settings.lock_timeout,
                    settings.migration_timeout,
                    target=target,
                    classes=self._classes,
                )
                await command(engine, visit)
        except LockTimeout as exc:
            if try_only:
                return None
            _failed(visit.outcome, exc.message, exc.exit_code)
        except ClandestinoError as exc:
            _failed(visit.outcome, exc.message, exc.exit_code)
        except Exception as exc:
            # A driver error no store wrapped: it is this target's failure, not the fleet's.
            _failed(visit.outcome, f"{type(exc).__name__}: {exc}", 1)
        visit.outcome.seconds = time.perf_counter() - began
        return visit.outcome


def _failed(outcome: TargetOutcome, message: str, exit_code: int) -> None:
    outcome.status = "failed"
    outcome.error = message
    outcome.exit_code = exit_code


class _LockWatch:
    """The target's store, noting whether the engine asked for its lock."""

    def __init__(self, store: ControlStore, visit: Visit) -> None:
        self._store = store
        self._visit = visit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]:
        self._visit.took_lock = True
        return self._store.lock(timeout, on_wait)
