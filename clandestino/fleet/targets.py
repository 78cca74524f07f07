"""What a target is, and the three ways a fleet is given: a file, a query, a callable.

A target's URL may carry a password, so it is kept out of `repr` and shown masked (`where`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clandestino.config import mask_url
from clandestino.errors import ConfigurationError

__all__ = [
    "TARGETS",
    "TARGETS_FROM",
    "TARGETS_QUERY",
    "FleetSource",
    "Target",
    "TargetLine",
    "parse_target_lines",
    "read_target_file",
]

TARGETS = "CLANDESTINO_TARGETS"
TARGETS_QUERY = "CLANDESTINO_TARGETS_QUERY"
TARGETS_FROM = "CLANDESTINO_TARGETS_FROM"

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}")


@dataclass(frozen=True)
class Target:
    """One place with its own records and lock. Migrations see it as `self.target`.

    kind: "postgres-schema", "postgres-database", "mongo-database", "elasticsearch-prefix",
    "sqlite-file", or a plug-in's own. url: the target's own connection string or path, when
    it has one (else it lives in the store the settings name).
    """

    name: str
    kind: str
    url: str | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        """The URL with any password masked, or the name when the target has no URL."""
        return mask_url(self.url) if self.url else self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TargetLine:
    """A target as a file or a callable gives it: a name, and its own URL if it has one."""

    name: str
    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FleetSource:
    """Where the fleet comes from: exactly one of a file, a query against the store, or a
    `module:function` callable (sync or async) returning names, (name, url) pairs or Targets."""

    file: Path | None = None
    query: str | None = None
    callable: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.file, self.query, self.callable) if v is not None]
        if len(given) != 1:
            raise ConfigurationError(
                "a fleet needs exactly one source of targets",
                f"pass --targets FILE ({TARGETS}), --targets-query PATTERN ({TARGETS_QUERY}) "
                f"or --targets-from module:function ({TARGETS_FROM})",
            )


def parse_target_lines(text: str, source: str) -> list[TargetLine]:
    """`name [url]` per line; `#` starts a comment; blank lines are ignored; a name twice is
    refused, as it would run one target twice."""
    lines: list[TargetLine] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or not _NAME.fullmatch(words[0]):
            raise ConfigurationError(
                f"{source}, line {number}: expected `name [url]`, got {_shown(raw)!r}",
                "one target per line: its name (letters, digits, _ . -), then its own URL if any",
            )
        if words[0] in seen:
            raise ConfigurationError(
                f"{source}, line {number}: target {words[0]} is named twice",
                "give each target once",
            )
        seen.add(words[0])
        lines.append(TargetLine(words[0], words[1] if len(words) == 2 else None))
    return lines


def _shown(raw: str) -> str:
    # A malformed line may still hold a URL with a password.
    return " ".join(mask_url(word) if "://" in word else word for word in raw.split())


def read_target_file(path: Path) -> list[TargetLine]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the targets file {path}: {exc}", f"fix --targets or {TARGETS}"
        ) from exc
    return parse_target_lines(text, str(path))


def lines_from(values: Iterable[object], source: str) -> list[TargetLine | Target]:
    """What a callable returned, checked: names, (name, url) pairs, or Targets."""
    found: list[TargetLine | Target] = []
    for value in values:
        if isinstance(value, Target | TargetLine):
            found.append(value)
        elif isinstance(value, str) and _NAME.fullmatch(value):
            found.append(TargetLine(value))
        elif (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], str | None)
        ):
            found.append(TargetLine(value[0], value[1]))
        else:
            raise ConfigurationError(
                f"{source} returned {type(value).__name__} {_shown(str(value))!r}, not a target",
                "return names, (name, url) pairs or clandestino.fleet.Target objects",
            )
    return found
