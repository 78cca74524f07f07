"""How long a migration may wait for a lock on a live database, and how often it tries again.

The outage this guards against: an ALTER TABLE waits behind a long transaction for its lock, and
every query on that table queues behind the ALTER, so the application stalls until the deploy is
killed. With a lock_timeout the ALTER gives up after a few seconds instead, the queries behind it
go on, and the step is rolled back and tried again a little later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from clandestino.config import Settings, parse_flag
from clandestino.errors import ConfigurationError

__all__ = [
    "FLUSH_EACH_MIGRATION",
    "LOCK_ATTEMPTS",
    "LOCK_RETRY_WINDOW",
    "LOCK_TIMEOUT",
    "STATEMENT_TIMEOUT",
    "TrafficSettings",
    "local_settings",
]

LOCK_TIMEOUT = "CLANDESTINO_POSTGRES_LOCK_TIMEOUT"
STATEMENT_TIMEOUT = "CLANDESTINO_POSTGRES_STATEMENT_TIMEOUT"
LOCK_ATTEMPTS = "CLANDESTINO_POSTGRES_LOCK_ATTEMPTS"
LOCK_RETRY_WINDOW = "CLANDESTINO_POSTGRES_LOCK_RETRY_WINDOW"
FLUSH_EACH_MIGRATION = "CLANDESTINO_POSTGRES_FLUSH_EACH_MIGRATION"

# A deploy waits a few seconds per attempt, a few attempts, about a minute in all: long enough
# for a batch job's transaction to end, short enough that a stuck one fails the deploy, not
# the application.
_DEFAULT_LOCK_TIMEOUT = 5.0
_DEFAULT_ATTEMPTS = 5
_DEFAULT_WINDOW = 60.0
_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 10.0


@dataclass(frozen=True)
class TrafficSettings:
    """lock_timeout and statement_timeout in seconds (0 or None: off), and the retry bounds."""

    lock_timeout: float = _DEFAULT_LOCK_TIMEOUT
    statement_timeout: float | None = None
    attempts: int = _DEFAULT_ATTEMPTS
    retry_window: float = _DEFAULT_WINDOW
    # Make each migration's commit wait for the disk, instead of the run's last one only.
    flush_each: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TrafficSettings:
        return cls(
            lock_timeout=_seconds(settings.get(LOCK_TIMEOUT), _DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT),
            statement_timeout=_seconds(settings.get(STATEMENT_TIMEOUT), 0.0, STATEMENT_TIMEOUT)
            or None,
            attempts=_attempts(settings.get(LOCK_ATTEMPTS)),
            retry_window=_seconds(
                settings.get(LOCK_RETRY_WINDOW), _DEFAULT_WINDOW, LOCK_RETRY_WINDOW
            ),
            flush_each=parse_flag(
                settings.get(FLUSH_EACH_MIGRATION), FLUSH_EACH_MIGRATION, default=False
            ),
        )

    def backoff(self, retry: int) -> float:
        """The pause before retry number `retry` (1, 2, ...): doubling, capped, jittered, so
        that deployers and the blocked application's own retries do not fall into step."""
        ceiling = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (retry - 1))
        return random.uniform(ceiling / 2, ceiling)


def local_settings(
    lock_timeout: float, statement_timeout: float | None, flush: bool, scope: str = "LOCAL"
) -> str:
    """SET statements for one step's transaction (`scope` LOCAL) or for the session (SESSION),
    as one string: one round trip."""
    parts = [f"SET {scope} lock_timeout = {_milliseconds(lock_timeout)}"]
    if statement_timeout:
        parts.append(f"SET {scope} statement_timeout = {_milliseconds(statement_timeout)}")
    if not flush:
        # The commit returns before its WAL reaches the disk; the run's last commit waits for
        # the disk, which makes every earlier one durable with it.
        parts.append("SET LOCAL synchronous_commit = off")
    return "; ".join(parts)


def _milliseconds(seconds: float) -> int:
    # 0 turns the timeout off in PostgreSQL; anything above it is at least a millisecond.
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _seconds(text: str | None, default: float, setting: str) -> float:
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigurationError(
            f"{setting}={text!r} is not a number of seconds",
            "set it to a number like 5, or 0 to turn it off",
        )
    return seconds


def _attempts(text: str | None) -> int:
    if not text:
        return _DEFAULT_ATTEMPTS
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(
            f"{LOCK_ATTEMPTS}={text!r} is not a number of attempts", "set it to 1 or more"
        )
    return int(text)
