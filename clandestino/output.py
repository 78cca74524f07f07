"""Turning engine events into what a person or a CI job reads: the original's lines, or JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from clandestino.events import (
    ChecksumRefreshed,
    Event,
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
    RepositoryChosen,
    RunFinished,
    RunStarted,
    StepBlocked,
    Warned,
)
from clandestino.plan import MigrationState

__all__ = [
    "ERROR",
    "OK",
    "SEPARATOR",
    "SKIPPED",
    "JsonRenderer",
    "TextRenderer",
    "json_line",
    "paint",
    "status_lines",
    "wants_colour",
]

# The original's status symbols (clandestino_interfaces.MigrationStatus).
OK, ERROR, SKIPPED = "✅", "⚠️", "⏭️"
SEPARATOR = "=" * 100
_LEGEND = f"{OK} - success |  {ERROR} - error |  {SKIPPED} - skipped"
_VERB = {"up": "running", "down": "rolling back"}


_RED, _GREEN, _YELLOW = "31", "32", "33"


def paint(text: str, colour: str, enabled: bool) -> str:
    """`text` in an ANSI colour when `enabled` (a terminal, and NO_COLOR unset)."""
    return f"\033[{colour}m{text}\033[0m" if enabled else text


def wants_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR")


class TextRenderer:
    """The original tool's lines, plus a summary; warnings go to `errors`."""

    def __init__(
        self, out: TextIO, errors: TextIO, colour: bool = False, colour_errors: bool = False
    ) -> None:
        self._out = out
        self._errors = errors
        self._colour = colour
        self._colour_errors = colour_errors
        self._open_line = False

    def __call__(self, event: Event) -> None:
        match event:
            case RepositoryChosen(mode=mode):
                self._line(f"Migration repository mode is: {mode}")
            case RunStarted(direction="up", dry_run=dry_run):
                if dry_run:
                    self._line("Dry run: nothing will be changed")
                self._line(f"Running migrations: {_LEGEND}")
                self._line(SEPARATOR)
            case RunStarted(direction="down"):
                self._line(f"Roll back migrations: {_LEGEND}")
                self._line(SEPARATOR)
            case MigrationSkipped(name=name):
                self._line(f"-> running {name} {SKIPPED}")
            case MigrationPlanned(name=name, direction=direction):
                self._line(f"-> would {'run' if direction == 'up' else 'roll back'} {name}")
            case MigrationStarted(name=name, direction=direction):
                self._out.write(f"-> {_VERB[direction]} {name}")
                self._out.flush()
                self._open_line = True
            case MigrationStillRunning(name=name, seconds=seconds):
                if self._open_line:
                    self._line("")
                    self._open_line = False
                self._line(f"   ... still working on {name} ({seconds:.0f} s)")
            case StepBlocked():
                if self._open_line:
                    self._line("")
                    self._open_line = False
                self._line(f"   ... {_blocked(event)}")
            case MigrationSucceeded(name=name, direction=direction, seconds=seconds):
                self._finish_step(name, direction, f"{OK} {seconds:.2f} s")
            case MigrationErrored(name=name, direction=direction, seconds=seconds):
                self._finish_step(name, direction, f"{ERROR} {seconds:.2f} s")
            case ChecksumRefreshed(name=name):
                self._line(f"-> repaired {name}: its current content is now the one applied {OK}")
            case LeftoverDropped(what=what):
                self._line(f"-> repaired: dropped {what} {OK}")
            case MigrationBaselined(name=name):
                self._line(f"-> baselined {name} {OK}")
            case MarkerCleared(name=name, pending=pending):
                after = "pending, runs again" if pending else "stays applied"
                self._line(f"-> repaired {name}: {after} {OK}")
            case LockWaiting(holder=holder, since=since, timeout=timeout):
                when = f" since {since:%Y-%m-%d %H:%M:%S %Z}" if since else ""
                self._line(f"waiting for the lock held by {holder}{when} (up to {timeout:g} s)")
            case Warned(message=message):
                self._errors.write(
                    paint(f"warning: {message}", _YELLOW, self._colour_errors) + "\n"
                )
                self._errors.flush()
            case RunFinished(failed=failed):
                self._line(paint(_summary(event), _RED if failed else _GREEN, self._colour))

    def _finish_step(self, name: str, direction: str, outcome: str) -> None:
        # The original's line, `-> running NAME SYMBOL`, and how long it took. When "still
        # working" lines came in between, the line is written whole again.
        if self._open_line:
            self._line(f" {outcome}")
        else:
            self._line(f"-> {_VERB[direction]} {name} {outcome}")
        self._open_line = False

    def _line(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


def _summary(event: RunFinished) -> str:
    took = f"in {event.seconds:.2f} s"
    if event.dry_run:
        return (
            f"Dry run: {event.planned} to apply, {event.skipped} already applied, nothing changed"
        )
    if event.baseline:
        return f"Done: {event.done} marked as applied (not run) {took}"
    if event.direction == "down":
        return f"Done: {event.done} rolled back, {event.failed} failed {took}"
    return f"Done: {event.done} applied, {event.skipped} skipped, {event.failed} failed {took}"


def _blocked(event: StepBlocked) -> str:
    who = "; ".join(event.blockers) or "a session that let go before it could be named"
    then = (
        f"trying again in {event.retry_in:.1f} s"
        if event.retry_in is not None
        else "no attempts left"
    )
    return (
        f"{event.name} waited {event.lock_timeout:g} s for a lock held by {who};"
        f" attempt {event.attempt} of {event.attempts} rolled back, {then}"
    )


class JsonRenderer:
    """One JSON object per event, each on its own line, for CI logs and tools."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, event: Event) -> None:
        self.write(_event_name(event), dataclasses.asdict(event))

    def write(self, name: str, fields: dict[str, Any]) -> None:
        self._out.write(json_line(name, fields) + "\n")
        self._out.flush()


def json_line(name: str, fields: dict[str, Any]) -> str:
    import json  # only --json needs it; a no-op run in text is mostly imports

    return json.dumps({"event": name, **fields}, default=_json_value, ensure_ascii=False)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _event_name(event: Event) -> str:
    name = type(event).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def status_lines(states: list[MigrationState]) -> list[str]:
    """`-lm` as an aligned table under the original's heading."""
    width = max((len(state.name) for state in states), default=0)
    lines = ["Migrations: ", SEPARATOR]
    lines += [f"{state.name:<{width}}  {_state_text(state)}" for state in states]
    return lines


def _state_text(state: MigrationState) -> str:
    if state.interrupted:
        return f"{ERROR} interrupted: {state.interrupted}; see `cdt --repair`"
    if not state.applied:
        return "pending"
    when = state.applied_at
    text = f"applied {when:%Y-%m-%d %H:%M:%S}" if when else "applied"
    if state.file_missing:
        text += f"  {ERROR} file missing"
    if state.changed:
        text += f"  {ERROR} changed since applied"
    return text
