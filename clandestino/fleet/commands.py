"""What `-m`, `-rm` and `-lm` do to one target of a fleet, given its engine."""

from __future__ import annotations

from clandestino.engine import Engine, RunReport
from clandestino.fleet.report import TargetState
from clandestino.fleet.runner import Command, Visit
from clandestino.plan import migration_states

__all__ = ["migrate_command", "rollback_command", "status_command"]


def _settle(visit: Visit, report: RunReport) -> None:
    visit.outcome.done = list(report.done)
    if report.done:
        visit.outcome.status = "applied"
    elif visit.took_lock or visit.outcome.deferred:
        # It had work when first read, and none was left once we held its lock.
        visit.outcome.status = "by_other_runner"


def migrate_command(to: str | None = None, strict: bool | str = False) -> Command:
    async def command(engine: Engine, visit: Visit) -> None:
        _settle(visit, await engine.migrate(to=to, strict=strict))

    return command


def rollback_command(steps: int | None = None, to: str | None = None) -> Command:
    async def command(engine: Engine, visit: Visit) -> None:
        report = await engine.rollback(steps, to)
        visit.outcome.done = list(report.done)
        visit.outcome.status = "applied" if report.done else "up_to_date"

    return command


def status_command() -> Command:
    async def command(engine: Engine, visit: Visit) -> None:
        states = migration_states(await engine.plan())
        visit.outcome.status = "listed"
        visit.outcome.state = TargetState(
            applied=sum(s.applied and not s.interrupted for s in states),
            pending=sum(not s.applied and not s.interrupted for s in states),
            changed=sum(s.changed for s in states),
            missing=sum(s.file_missing for s in states),
            interrupted=sum(bool(s.interrupted) for s in states),
        )

    return command
