"""Running a plan: lock, read the records once, load what must run, run it, record it.

The no-op case (everything applied) reads the records once without the lock and writes nothing.
Otherwise every migration that will run is loaded and checked first, so that a broken file stops
the run before anything changes; then the lock is taken, the records are read again (another
deployer may have run some meanwhile), and each migration runs with its record in one transaction
where the backend has them.

asyncio is imported by the methods that run steps, not at the top: the CLI settles a run with
nothing to do (`migrate_from`) before it starts an event loop, and importing asyncio would be a
third of that run's time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clandestino.discovery import MigrationFile, load_migration_class, user_frame
from clandestino.errors import (
    ClandestinoError,
    LockTimeout,
    MigrationFailed,
    PlanError,
    UnfinishedMigration,
)
from clandestino.events import (
    ChecksumRefreshed,
    Direction,
    EventSink,
    LeftoverDropped,
    LockWaiting,
    MarkerCleared,
    MigrationBaselined,
    MigrationErrored,
    MigrationPlanned,
    MigrationSkipped,
    MigrationStarted,
    MigrationStillRunning,
    MigrationSucceeded,
    RunFinished,
    RunStarted,
    StepBlocked,
    Warned,
)
from clandestino.identity import deployer_identity
from clandestino.plan import (
    Plan,
    describe_interruption,
    make_plan,
    policy_problems,
    rollback_targets,
    select_pending,
)
from clandestino.store import AppliedMigration, ControlStore, LockConflict, LockHolder

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from clandestino_interfaces import AbstractMigration

__all__ = ["Engine", "RunReport"]

Confirm = Callable[[list[str]], Awaitable[bool]]

# The state a failed step leaves its migration in: a failed up() writes no record; a failed
# down() removes none, so the migration is still applied.
_AFTER_FAILURE: dict[Direction, str] = {
    "up": "nothing of it was recorded",
    "down": (
        "its record is kept, so it is still applied; what down() changed before it stopped was "
        "rolled back only if it ran in a transaction: check the database"
    ),
}

_FIRST_TICK_SECONDS = 2.0
_TICK_SECONDS = 10.0


@dataclass
class RunReport:
    """What a migrate or rollback call did. `cancelled` is set when the confirmation said no."""

    direction: Direction
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    cancelled: bool = False
    # Recorded as applied without running (--baseline).
    baseline: bool = False


class Engine:
    def __init__(
        self,
        store: ControlStore,
        files: list[MigrationFile],
        emit: EventSink,
        lock_timeout: float,
        step_timeout: float | None = None,
        target: object | None = None,
        classes: dict[str, type[AbstractMigration]] | None = None,
    ) -> None:
        self._store = store
        self._files = files
        self._by_name = {file.name: file for file in files}
        self._emit = emit
        self._lock_timeout = lock_timeout
        self._step_timeout = step_timeout
        # What migrations see as `self.target`; a fleet shares one set of loaded classes
        # between its targets' engines, so each file is imported once per run.
        self._target = target
        self._classes: dict[str, type[AbstractMigration]] = {} if classes is None else classes

    async def plan(self) -> Plan:
        return make_plan(self._files, await self._store.applied())

    async def _checked_plan(self) -> Plan:
        """The plan, refusing to go on past a step that a dead process left unfinished."""
        plan = await self.plan()
        if plan.interrupted:
            record = plan.interrupted[0]
            raise UnfinishedMigration(
                f"{record.name}: {describe_interruption(record.interrupted)}, so its changes may "
                "be half made",
                "check the database, undo or finish what it did by hand, then run `cdt --repair`",
            )
        return plan

    async def migrate(
        self, to: str | None = None, dry_run: bool = False, strict: bool | str = False
    ) -> RunReport:
        started = time.perf_counter()
        self._emit(RunStarted("up", dry_run))
        # Without the lock a marker may be a live run's, so markers are judged under the lock.
        plan = await self.plan()
        settled = self._settle(plan, to, dry_run, strict, started)
        if settled is not None:
            return settled
        report = RunReport("up")
        self._load_all(select_pending(plan, to))
        try:
            async with self._store.lock(self._lock_timeout, self._on_wait):
                plan = await self._checked_plan()
                self._enforce(plan, strict)
                await self._store.ensure()
                await self._run_pending(plan, select_pending(plan, to), report)
        except MigrationFailed:
            self._finish(report, started, failed=1)
            raise
        self._warn_about(plan)
        return self._finish(report, started)

    def migrate_from(
        self,
        records: list[AppliedMigration],
        to: str | None = None,
        strict: bool | str = False,
        started: float | None = None,
    ) -> RunReport | None:
        """migrate() answered from `records` read beforehand, when they leave nothing to run;
        None, with nothing loaded, when there is work and migrate() must run.

        Blocking and loop-free, for the CLI's check before it starts an event loop. Not for dry
        runs: those import the migrations they would run, which expect a running loop.
        """
        started = time.perf_counter() if started is None else started
        self._emit(RunStarted("up"))
        return self._settle(make_plan(self._files, records), to, False, strict, started)

    def _settle(
        self, plan: Plan, to: str | None, dry_run: bool, strict: bool | str, started: float
    ) -> RunReport | None:
        """The report of a run that changes nothing, or None when there is work to do."""
        self._enforce(plan, strict)
        targets = select_pending(plan, to)
        if (targets or plan.interrupted) and not dry_run:
            return None
        report = RunReport("up", dry_run=dry_run)
        # A dry run still imports what it would run, so a broken file shows now.
        self._load_all(targets)
        self._report_plan(plan, targets, report)
        self._warn_about(plan)
        return self._finish(report, started)

    def _report_plan(self, plan: Plan, targets: list[MigrationFile], report: RunReport) -> None:
        selected = {file.name for file in targets}
        for file in plan.files:
            if file.name in plan.applied_names:
                self._skip(file.name, report)
            elif file.name in selected:
                report.planned.append(file.name)
                self._emit(MigrationPlanned(file.name, "up"))

    async def _run_pending(
        self, plan: Plan, targets: list[MigrationFile], report: RunReport
    ) -> None:
        selected = {file.name for file in targets}
        self._load_all(targets)
        for file in plan.files:
            if file.name in plan.applied_names:
                self._skip(file.name, report)
            elif file.name in selected:
                await self._step(file, "up")
                report.done.append(file.name)

    def _skip(self, name: str, report: RunReport) -> None:
        report.skipped.append(name)
        self._emit(MigrationSkipped(name))

    async def rollback(
        self, steps: int | None = None, to: str | None = None, confirm: Confirm | None = None
    ) -> RunReport:
        report = RunReport("down")
        plan = await self.plan()
        targets = [record.name for record in rollback_targets(plan, steps, to)]
        self._load_all([self._file_for_rollback(name) for name in targets])
        for file in plan.changed:
            if file.name in targets:
                self._emit(Warned(f"{file.name} changed since it was applied; its down() is new"))
        if targets and confirm is not None and not await confirm(targets):
            report.cancelled = True
            return report
        started = time.perf_counter()
        self._emit(RunStarted("down"))
        if targets:
            async with self._store.lock(self._lock_timeout, self._on_wait):
                again = [r.name for r in rollback_targets(await self._checked_plan(), steps, to)]
                if again != targets:
                    raise PlanError(
                        "the applied migrations changed while waiting (another deployer ran)",
                        "run `cdt -lm` and try again",
                    )
                for name in targets:
                    try:
                        await self._step(self._by_name[name], "down")
                    except MigrationFailed:
                        self._finish(report, started, failed=1)
                        raise
                    report.done.append(name)
        return self._finish(report, started)

    async def repair(self, confirm: Confirm | None = None) -> list[str]:
        """Clear the markers of interrupted steps, once the user has put things right by hand,
        and accept changed files' current content as the one applied."""
        names = self._to_repair(await self.plan())
        # Optional: what failed steps left in the database itself (PostgreSQL: invalid indexes).
        find_leftovers = getattr(self._store, "leftovers", None)
        leftovers: list[str] = [] if find_leftovers is None else await find_leftovers()
        if not (names or leftovers) or (
            confirm is not None and not await confirm(names + leftovers)
        ):
            return []
        async with self._store.lock(self._lock_timeout, self._on_wait):
            for leftover in leftovers:
                await self._store.drop_leftover(leftover)  # type: ignore[attr-defined]
                self._emit(LeftoverDropped(leftover))
            plan = await self.plan()
            for record in plan.interrupted:
                if record.name in names:
                    await self._store.clear_marker(record.name)
                    pending = (
                        record.interrupted is not None and record.interrupted.direction == "up"
                    )
                    self._emit(MarkerCleared(record.name, pending))
            for file in plan.changed:
                if file.name in names:
                    await self._store.update_checksum(file.name, file.checksum)
                    self._emit(ChecksumRefreshed(file.name))
        return names + leftovers

    @staticmethod
    def _to_repair(plan: Plan) -> list[str]:
        return [r.name for r in plan.interrupted] + [f.name for f in plan.changed]

    async def baseline(self, to: str) -> RunReport:
        """Record every migration up to and including `to` as applied, without running any."""
        started = time.perf_counter()
        report = RunReport("up", baseline=True)
        async with self._store.lock(self._lock_timeout, self._on_wait):
            plan = await self._checked_plan()
            await self._store.ensure()
            for file in select_pending(plan, to, option="--baseline"):
                await self._store.record(file.name, file.checksum, 0)
                report.done.append(file.name)
                self._emit(MigrationBaselined(file.name))
        return self._finish(report, started)

    def _file_for_rollback(self, name: str) -> MigrationFile:
        file = self._by_name.get(name)
        if file is None:
            raise PlanError(
                f"cannot roll back {name}: its file is not in the migrations folder",
                "restore the file, or remove its record by hand",
            )
        return file

    def _load_all(self, files: list[MigrationFile]) -> None:
        for file in files:
            if file.name not in self._classes:
                self._classes[file.name] = load_migration_class(file)

    async def _step(self, file: MigrationFile, direction: Direction) -> None:
        import asyncio

        self._emit(MigrationStarted(file.name, direction))
        began = time.perf_counter()
        ticker = _StillRunning(asyncio.get_running_loop(), self._emit, file.name, direction, began)
        try:
            await self._step_in_store(file, direction, began)
        finally:
            ticker.stop()

    async def _step_in_store(self, file: MigrationFile, direction: Direction, began: float) -> None:
        instance, bound = self._instantiate(file, direction)
        outside = self._store.runs_outside_transactions and not getattr(
            instance, "transactional", True
        )
        # A store whose transaction carries a bound step's work with its record marks only the
        # other steps: a marker costs a commit, and most steps need none there.
        with_record = bound and not outside
        if not (with_record and getattr(self._store, "marks_only_steps_apart_from_records", False)):
            await self._store.mark_started(file.name, direction, deployer_identity())
        try:
            if outside:
                await self._run_step(instance, file, direction)
                async with self._store.transaction():
                    await self._write_record(file, direction, began)
            else:
                await self._transactional_step(instance, file, direction, began, bound=bound)
        except MigrationFailed as failure:
            # A failure that was caught and cleaned up is not an interruption.
            await self._store.clear_marker(file.name)
            self._emit(
                MigrationErrored(
                    file.name,
                    direction,
                    failure.message,
                    failure.down_error,
                    time.perf_counter() - began,
                )
            )
            raise
        except BaseException as error:
            # Not the migration's fault (the database went away, Ctrl-C): still mark the line.
            self._emit(
                MigrationErrored(
                    file.name, direction, _describe(error), seconds=time.perf_counter() - began
                )
            )
            raise
        self._emit(MigrationSucceeded(file.name, direction, time.perf_counter() - began))

    async def _transactional_step(
        self, instance: Any, file: MigrationFile, direction: Direction, began: float, bound: bool
    ) -> None:
        """The step and its record in one transaction; tried again, as a new instance, while
        it gives up waiting for a lock (`bound`: its work is all in the transaction rolled back)."""
        import asyncio

        # Where the store's rollback undoes all a bound step did, a clean-up down() has nothing
        # to undo, and inside the failed transaction it could only fail again and hide the
        # first error.
        clean_up = not (bound and getattr(self._store, "rolls_back_failed_steps", False))
        attempt = 1
        while True:
            try:
                async with self._store.transaction():
                    await self._run_step(
                        instance, file, direction, retry_on_conflict=bound, clean_up=clean_up
                    )
                    await self._write_record(file, direction, began)
                return
            except _Blocked as blocked:
                pause = await self._after_blocked(blocked, file, direction, attempt, began)
            await asyncio.sleep(pause)
            attempt += 1
            instance, _ = self._instantiate(file, direction)

    async def _after_blocked(
        self,
        blocked: _Blocked,
        file: MigrationFile,
        direction: Direction,
        attempt: int,
        began: float,
    ) -> float:
        """The pause before the next attempt; LockTimeout when the bounds are reached."""
        conflict = blocked.conflict
        pause = conflict.backoff(attempt)
        spent = time.perf_counter() - began
        last = (
            attempt >= conflict.attempts
            or spent + pause + conflict.lock_timeout > conflict.retry_window
        )
        self._emit(
            StepBlocked(
                file.name,
                direction,
                attempt,
                attempt if last else conflict.attempts,
                conflict.lock_timeout,
                conflict.blockers,
                None if last else pause,
            )
        )
        if not last:
            return pause
        # Its transaction was rolled back: the step left nothing, not even a marker.
        await self._store.clear_marker(file.name)
        who = conflict.blockers[0] if conflict.blockers else "a session that let go too soon"
        raise LockTimeout(
            f"{file.name}: {direction}() could not get its locks in {attempt} attempts over"
            f" {spent:.0f} s (lock_timeout {conflict.lock_timeout:g} s); blocked by {who};"
            " nothing of it was recorded",
            conflict.hint,
        ) from blocked.__cause__

    def _instantiate(self, file: MigrationFile, direction: Direction) -> tuple[Any, bool]:
        """The migration, and whether its infra was bound to the run's connection."""
        try:
            instance = self._classes[file.name](
                migration_name=file.name, migration_repository=self._store.legacy_repository()
            )
        except Exception as exc:
            raise self._failure(exc, file, "__init__", direction) from exc
        if self._target is not None:
            instance.target = self._target
        bound = self._store.bind_infra(getattr(instance, "infra", None))
        if bound is not None:
            instance.infra = bound
        prepare = getattr(self._store, "prepare_step", None)
        if prepare is not None:
            # The store's per-step settings from the migration (PostgreSQL: its lock_timeout).
            prepare(instance)
        return instance, bound is not None

    async def _run_step(
        self,
        instance: Any,
        file: MigrationFile,
        direction: Direction,
        retry_on_conflict: bool = False,
        clean_up: bool = True,
    ) -> None:
        import asyncio

        limit = asyncio.timeout(self._step_timeout)
        try:
            async with limit:
                await getattr(instance, direction)()
        except _raised_by_code() as exc:
            # `raise SystemExit(0)` or a KeyboardInterrupt raised by the migration's own code is
            # a failed migration. A real Ctrl-C or SIGTERM arrives as a cancellation of this
            # task (asyncio.run's handler, the CLI's), and stays an interruption.
            _stay_interrupted(exc)
            failure = self._failure(exc, file, direction, direction)
            if direction == "up" and clean_up:
                failure.add_down_error(await self._clean_up(instance, file))
            raise failure from exc
        except Exception as exc:
            if limit.expired():
                failure = MigrationFailed(
                    f"{file.name}: {direction}() did not finish within {self._step_timeout:g} s",
                    f"it was stopped; {_AFTER_FAILURE[direction]}; raise or unset "
                    "CLANDESTINO_MIGRATION_TIMEOUT if it needs longer",
                )
            elif (lost := self._store.connection_lost(exc)) is not None:
                raise lost from exc
            elif retry_on_conflict and (conflict := self._lock_conflict(exc)) is not None:
                # Rolled back and tried again: no clean-up down(), the rollback undoes it all.
                raise _Blocked(conflict) from exc
            else:
                failure = self._failure(exc, file, direction, direction)
            if direction == "up" and clean_up:
                failure.add_down_error(await self._clean_up(instance, file))
            raise failure from exc

    async def _write_record(self, file: MigrationFile, direction: Direction, began: float) -> None:
        if direction == "up":
            duration_ms = round((time.perf_counter() - began) * 1000)
            await self._store.record(file.name, file.checksum, duration_ms)
        else:
            await self._store.remove(file.name)

    def _failure(
        self, exc: BaseException, file: MigrationFile, method: str, direction: Direction
    ) -> MigrationFailed:
        where = user_frame(exc.__traceback__, file.path)
        return MigrationFailed(
            f"{file.name} failed in {method}(): {_describe(exc)} ({where})",
            f"{_AFTER_FAILURE[direction]}; fix it and run again",
        )

    async def _clean_up(self, instance: Any, file: MigrationFile) -> str | None:
        """Best-effort down() after a failed up(), as the original did.

        It runs before the step's transaction is rolled back, so it sees what up() left; what it
        does through the run's transaction is then rolled back with up()'s changes, and only its
        effects elsewhere remain.
        """
        import asyncio

        try:
            async with asyncio.timeout(self._step_timeout):
                await instance.down()
        except TimeoutError:
            return f"did not finish within {self._step_timeout:g} s either"
        except ClandestinoError as exc:
            return exc.message
        except _raised_by_code() as exc:
            _stay_interrupted(exc)
            return f"{_describe(exc)} ({user_frame(exc.__traceback__, file.path)})"
        except Exception as exc:
            return f"{_describe(exc)} ({user_frame(exc.__traceback__, file.path)})"
        return None

    def _lock_conflict(self, error: Exception) -> LockConflict | None:
        # Optional: only stores that bound how long a statement waits for a lock offer it.
        judge = getattr(self._store, "lock_conflict", None)
        return None if judge is None else judge(error)

    def _on_wait(self, holder: LockHolder) -> None:
        if holder.taken_over:
            since = f" (held since {holder.since:%Y-%m-%d %H:%M:%S %Z})" if holder.since else ""
            self._emit(
                Warned(f"took the lock over from {holder.description}{since}: its lease expired")
            )
        else:
            self._emit(LockWaiting(holder.description, holder.since, self._lock_timeout))

    @staticmethod
    def _enforce(plan: Plan, strict: bool | str) -> None:
        """--strict: refuse to run past records and files that do not agree. A string `strict`
        names where strictness came from (`CLANDESTINO_STRICT=true (from ...)`), for the line."""
        problems = policy_problems(plan)
        if strict and problems:
            named = strict if isinstance(strict, str) else "--strict"
            hints = dict.fromkeys(problem.hint.replace("--strict", named) for problem in problems)
            raise PlanError(
                f"{named}: {'; '.join(problem.refusal for problem in problems)}",
                "; ".join(hints),
            )

    def _warn_about(self, plan: Plan) -> None:
        for record in plan.interrupted:
            self._emit(Warned(f"{record.name}: {describe_interruption(record.interrupted)}"))
        for name, count in plan.duplicates.items():
            self._emit(
                Warned(f"{name} is recorded {count} times (left by a race of the original tool)")
            )
        for problem in policy_problems(plan):
            self._emit(Warned(problem.warning))

    def _finish(self, report: RunReport, started: float, failed: int = 0) -> RunReport:
        report.seconds = time.perf_counter() - started
        self._emit(
            RunFinished(
                report.direction,
                done=len(report.done),
                planned=len(report.planned),
                skipped=len(report.skipped),
                failed=failed,
                seconds=report.seconds,
                dry_run=report.dry_run,
                baseline=report.baseline,
            )
        )
        return report


class _Blocked(Exception):
    """A step gave up waiting for a lock; raised through its transaction so it rolls back."""

    def __init__(self, conflict: LockConflict) -> None:
        super().__init__("blocked")
        self.conflict = conflict


class _StillRunning:
    """Says a step is still at work after a couple of seconds, then every ten. A timer rather
    than a task per step: most steps end long before it fires."""

    def __init__(
        self,
        loop: AbstractEventLoop,
        emit: EventSink,
        name: str,
        direction: Direction,
        began: float,
    ) -> None:
        self._loop = loop
        self._emit = emit
        self._name = name
        self._direction = direction
        self._began = began
        self._timer = loop.call_later(_FIRST_TICK_SECONDS, self._tick)

    def _tick(self) -> None:
        seconds = time.perf_counter() - self._began
        self._emit(MigrationStillRunning(self._name, self._direction, seconds))
        self._timer = self._loop.call_later(_TICK_SECONDS, self._tick)

    def stop(self) -> None:
        self._timer.cancel()


def _raised_by_code() -> tuple[type[BaseException], ...]:
    """What a migration's code can raise that is not an Exception, named one by one rather
    than caught as BaseException. A function, for asyncio is not imported at the top."""
    import asyncio

    return (SystemExit, KeyboardInterrupt, GeneratorExit, asyncio.CancelledError)


def _stay_interrupted(error: BaseException) -> None:
    """Raise a cancellation when someone cancelled the running task (a real Ctrl-C or SIGTERM),
    whatever the migration made of it (`except BaseException: sys.exit(0)`), so the run still
    ends as interrupted (130/143); return when the code raised `error` of its own accord."""
    import asyncio

    task = asyncio.current_task()
    if task is None or task.cancelling() == 0:
        return
    if isinstance(error, asyncio.CancelledError):
        raise error
    raise asyncio.CancelledError() from error


def _describe(error: BaseException) -> str:
    # Drivers append the server's whole reply (PyMongo: ", full error: {...}"); the first part
    # says what went wrong.
    text = str(error).split(", full error:")[0]
    if isinstance(error, ClandestinoError):
        return error.message
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
