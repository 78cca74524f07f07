"""Comparing the files on disk with the control records: what is pending, applied, missing,
changed or out of order, and which migrations a request selects. Pure functions, no I/O."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

from clandestino.discovery import MigrationFile
from clandestino.errors import PlanError
from clandestino.store import AppliedMigration, Interruption

__all__ = [
    "Disagreement",
    "MigrationState",
    "Plan",
    "describe_interruption",
    "make_plan",
    "migration_states",
    "policy_problems",
    "rollback_targets",
    "select_pending",
]


@dataclass(frozen=True)
class Plan:
    files: list[MigrationFile]
    applied: list[AppliedMigration]
    pending: list[MigrationFile]
    missing: list[AppliedMigration]
    changed: list[MigrationFile]
    out_of_order: list[MigrationFile]
    interrupted: list[AppliedMigration]
    # Names recorded more than once (the original tool's races could do that), with the count.
    duplicates: dict[str, int]
    # The last migration on disk that is applied, by name: what out-of-order pending ones precede.
    last_applied: str

    # Cached: the engine asks once per migration file, and rebuilding the set each time made a
    # run O(N^2) (about 50 ms of a no-op run at N = 1,000, over a second at 5,000).
    @cached_property
    def applied_names(self) -> set[str]:
        return {record.name for record in self.applied}


def make_plan(files: list[MigrationFile], applied: list[AppliedMigration]) -> Plan:
    """`applied` in the order the migrations were applied; `files` in name order."""
    interrupted = [record for record in applied if record.interrupted]
    # A marker of an up() that never finished is not a record of anything applied.
    applied = [r for r in applied if not (r.interrupted and r.interrupted.direction == "up")]
    counts = Counter(record.name for record in applied)
    records: dict[str, AppliedMigration] = {}
    for record in applied:
        records.setdefault(record.name, record)
    applied = list(records.values())
    on_disk = {file.name for file in files}
    pending = [file for file in files if file.name not in records]
    last_applied = max((file.name for file in files if file.name in records), default="")
    return Plan(
        files=files,
        applied=applied,
        pending=pending,
        missing=[record for record in applied if record.name not in on_disk],
        changed=[
            file
            for file in files
            if (found := records.get(file.name)) is not None
            and found.checksum is not None
            and found.checksum != file.checksum
        ],
        out_of_order=[file for file in pending if file.name < last_applied],
        interrupted=interrupted,
        duplicates={name: count for name, count in counts.items() if count > 1},
        last_applied=last_applied,
    )


@dataclass(frozen=True)
class Disagreement:
    """Records and files that do not agree: `warning` by default, `refusal` and `hint` with
    --strict."""

    warning: str
    refusal: str
    hint: str


def policy_problems(plan: Plan) -> list[Disagreement]:
    """What --strict refuses: applied records without a file, applied files that changed, and
    pending files that sort before one already applied."""
    problems = [
        Disagreement(
            f"{r.name} is applied but its file is gone; restore it, or delete its record by hand",
            f"{r.name} is applied but its file is gone",
            "restore the file, or delete its record by hand",
        )
        for r in plan.missing
    ]
    problems += [
        Disagreement(
            f"{f.name} changed since it was applied; restore it, or accept it with `cdt --repair`",
            f"{f.name} changed since it was applied",
            "restore it, or accept it as it is now with `cdt --repair`",
        )
        for f in plan.changed
    ]
    last = plan.last_applied
    problems += [
        Disagreement(
            f"{f.name} runs out of order: it sorts before {last}, applied earlier; --strict"
            " (CLANDESTINO_STRICT=true) refuses such files",
            f"{f.name} is pending but sorts before {last}, applied earlier",
            f"rename it to sort after {last}, or run without --strict to apply it out of order",
        )
        for f in plan.out_of_order
    ]
    return problems


def select_pending(plan: Plan, to: str | None, option: str = "--to") -> list[MigrationFile]:
    """The pending migrations to run, all of them or up to and including `to`; `option` is how
    the user named `to`, for the error."""
    if to is None:
        return plan.pending
    target = _strip_suffix(to)
    names = [file.name for file in plan.files]
    if target not in names:
        raise PlanError(f"{option} {to}: no migration file of that name", "see `cdt -lm`")
    return [file for file in plan.pending if file.name <= target]


def rollback_targets(plan: Plan, steps: int | None, to: str | None) -> list[AppliedMigration]:
    """The applied migrations to undo, most recent first."""
    if to is not None:
        target = _strip_suffix(to)
        names = [record.name for record in plan.applied]
        if target not in names:
            raise PlanError(f"--to {to}: that migration is not applied", "see `cdt -lm`")
        return list(reversed(plan.applied[names.index(target) + 1 :]))
    count = 1 if steps is None else steps
    if count < 1:
        raise PlanError(f"cannot roll back {count} migrations", "give a number of at least 1")
    return list(reversed(plan.applied[-count:])) if plan.applied else []


def _strip_suffix(name: str) -> str:
    return name.removesuffix(".py")


@dataclass(frozen=True)
class MigrationState:
    """One line of `status()`: a migration file, or a record whose file is gone."""

    name: str
    applied: bool
    applied_at: datetime | None
    changed: bool
    file_missing: bool
    interrupted: str | None = None


def migration_states(plan: Plan) -> list[MigrationState]:
    """Files in order, then the records whose file is gone."""
    records = {record.name: record for record in plan.applied}
    changed = {file.name for file in plan.changed}
    states = [
        MigrationState(
            name=file.name,
            applied=file.name in records,
            applied_at=records[file.name].applied_at if file.name in records else None,
            changed=file.name in changed,
            file_missing=False,
        )
        for file in plan.files
    ]
    states += [
        MigrationState(record.name, True, record.applied_at, False, True) for record in plan.missing
    ]
    interrupted = {record.name: record.interrupted for record in plan.interrupted}
    return [
        replace(state, interrupted=describe_interruption(interrupted[state.name]))
        if state.name in interrupted
        else state
        for state in states
    ]


def describe_interruption(interruption: Interruption | None) -> str | None:
    if interruption is None:
        return None
    when = f" at {interruption.since:%Y-%m-%d %H:%M:%S %Z}" if interruption.since else ""
    return f"{interruption.direction}() by {interruption.owner}{when} never finished"
