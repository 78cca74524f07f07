"""Showing a fleet run: one line per target outcome (or one redrawn status line on a
terminal), then a summary naming every failed target; or JSON, every event with its target.

No progress library: a redrawn line is all a fleet needs, and `rich` would cost a no-op fleet
run a tenth of a second of imports.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, TextIO

from clandestino.events import Event, EventSink, RepositoryChosen, Warned
from clandestino.fleet.events import (
    FleetFinished,
    FleetStarted,
    OnTarget,
    TargetDeferred,
    TargetDone,
)
from clandestino.fleet.report import FleetReport, TargetOutcome
from clandestino.output import JsonRenderer, json_line

__all__ = ["FleetJsonRenderer", "FleetTextRenderer", "matrix_lines", "outcome_line"]

_VERBS = {"up": "applied", "down": "rolled back", "status": "listed"}


def outcome_line(outcome: TargetOutcome, direction: str) -> str:
    if outcome.status == "failed":
        return f"{outcome.target}: FAILED: {outcome.error}"
    if outcome.status == "applied":
        return (
            f"{outcome.target}: {_VERBS[direction]} {len(outcome.done)} ({outcome.seconds:.2f} s)"
        )
    if outcome.status == "by_other_runner":
        return f"{outcome.target}: done by another runner"
    if outcome.status == "not_run":
        return f"{outcome.target}: not run (--on-error stop)"
    if outcome.status == "listed" and outcome.state is not None:
        return f"{outcome.target}: listed"
    return f"{outcome.target}: up to date"


def summary_lines(report: FleetReport) -> list[str]:
    counts = [
        f"{report.count('applied')} {_VERBS[report.direction]}",
        f"{report.count('up_to_date')} up to date",
        f"{report.count('by_other_runner')} done by another runner",
        f"{report.count('failed')} failed",
    ]
    if report.count("not_run"):
        counts.append(f"{report.count('not_run')} not run")
    if report.direction == "status":
        counts = [f"{report.count('listed')} listed", f"{report.count('failed')} failed"]
    lines = [f"Fleet of {len(report.outcomes)}: {', '.join(counts)} in {report.seconds:.2f} s"]
    lines += [f"  FAILED {o.target}: {o.error}" for o in report.failed]
    return lines


def matrix_lines(report: FleetReport) -> list[str]:
    width = max([len("target"), *(len(o.target) for o in report.outcomes)])
    heads = ("applied", "pending", "changed", "missing", "interrupted")
    lines = [f"{'target':<{width}}  " + "  ".join(heads)]
    for o in report.outcomes:
        if o.state is None:
            lines.append(f"{o.target:<{width}}  unreachable or failed: {o.error}")
            continue
        values = [getattr(o.state, head) for head in heads]
        lines.append(
            f"{o.target:<{width}}  "
            + "  ".join(f"{v:>{len(h)}}" for v, h in zip(values, heads, strict=True))
        )
    return lines


class FleetTextRenderer:
    """One line per target without a terminal; on one, a status line redrawn in place."""

    def __init__(self, out: TextIO, single: EventSink, terminal: bool) -> None:
        self._out = out
        self._single = single
        self._terminal = terminal
        self._direction = "up"
        self._total = 0
        self._done = 0
        self._failed = 0
        self._started = time.monotonic()

    def __call__(self, event: Event) -> None:
        if isinstance(event, FleetStarted):
            self._direction, self._total = event.direction, event.targets
            self._started = time.monotonic()
        elif isinstance(event, TargetDone):
            self._done += 1
            self._failed += event.outcome.status == "failed"
            if self._terminal:
                self._redraw()
            elif self._direction != "status":
                self._line(outcome_line(event.outcome, self._direction))
        elif isinstance(event, FleetFinished):
            if self._terminal:
                self._out.write("\r\033[K")
            if event.report.direction == "status":
                for line in matrix_lines(event.report):
                    self._line(line)
            for line in summary_lines(event.report):
                self._line(line)
        elif isinstance(event, OnTarget):
            # A target's own lines would be thousands; its warnings still matter.
            if isinstance(event.event, Warned):
                self._single(Warned(f"{event.target}: {event.event.message}"))
        elif isinstance(event, TargetDeferred):
            return
        elif isinstance(event, RepositoryChosen | Warned):
            self._single(event)

    def _redraw(self) -> None:
        elapsed = time.monotonic() - self._started
        left = elapsed / self._done * (self._total - self._done) if self._done else 0.0
        self._out.write(
            f"\r\033[K{self._done}/{self._total} targets, {self._failed} failed,"
            f" {elapsed:.0f} s elapsed, ~{left:.0f} s left"
        )
        self._out.flush()

    def _line(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


class FleetJsonRenderer:
    """Every event carries its target; the last one is the whole matrix."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._single = JsonRenderer(out)

    def __call__(self, event: Event) -> None:
        if isinstance(event, OnTarget):
            fields = dataclasses.asdict(event.event)
            name = _event_name(event.event)
            self._write(name, {"target": event.target, **fields})
        elif isinstance(event, TargetDeferred):
            self._write("target_deferred", {"target": event.target})
        elif isinstance(event, TargetDone):
            self._write("target_done", _outcome(event.outcome))
        elif isinstance(event, FleetStarted):
            self._write("fleet_started", {"target": None, **dataclasses.asdict(event)})
        elif isinstance(event, FleetFinished):
            report = event.report
            self._write(
                "fleet_finished",
                {
                    "target": None,
                    "direction": report.direction,
                    "seconds": report.seconds,
                    "failed": [o.target for o in report.failed],
                    "matrix": [_outcome(o) for o in report.outcomes],
                },
            )
        else:
            self._write(_event_name(event), {"target": None, **dataclasses.asdict(event)})

    def _write(self, name: str, fields: dict[str, Any]) -> None:
        self._out.write(json_line(name, fields) + "\n")
        self._out.flush()


def _outcome(outcome: TargetOutcome) -> dict[str, Any]:
    fields = dataclasses.asdict(outcome)
    if outcome.state is None:
        fields.pop("state")
    return fields


def _event_name(event: object) -> str:
    name = type(event).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
