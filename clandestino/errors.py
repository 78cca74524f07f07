"""Every error Clandestino raises, under one root so callers can catch them all.

    ClandestinoError                 exit 2 unless a subclass says otherwise
    ├── UsageError                   exit 2  bad command-line use, refused prompt
    ├── ConfigurationError           exit 2  a setting is missing, malformed or unknown
    │   └── BackendNotInstalled      exit 2  the backend's extra is not installed
    ├── MigrationFileError           exit 2  a migration file cannot be loaded or is not a migration
    ├── PlanError                    exit 2  the request names no usable migration
    ├── MigrationFailed              exit 1  a migration's up() or down() raised
    ├── UnfinishedMigration          exit 1  a step was interrupted before its record; repair first
    ├── DatabaseUnavailable          exit 3  the database cannot be reached or refused us
    └── LockTimeout                  exit 3  another deployer held the lock for too long

Each error carries a one-line message (what, where) and an optional hint (how to fix it); the CLI
prints both on one line and exits with `exit_code`. `str(error)` is `error.message`, the same text.
Any other exception escaping the CLI is a bug in Clandestino: it exits 70 (sysexits' EX_SOFTWARE).
"""

from __future__ import annotations

__all__ = [
    "BackendNotInstalled",
    "ClandestinoError",
    "ConfigurationError",
    "DatabaseUnavailable",
    "LockTimeout",
    "MigrationFailed",
    "MigrationFileError",
    "PlanError",
    "UnfinishedMigration",
    "UsageError",
]


class ClandestinoError(Exception):
    """The root of every error Clandestino raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as the single line the CLI prints."""
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(ClandestinoError):
    """The command line or the call does not make sense."""


class ConfigurationError(ClandestinoError):
    """A setting is missing, malformed or names something that does not exist."""


class BackendNotInstalled(ConfigurationError):
    """The configured backend's package or driver is not installed."""


class MigrationFileError(ClandestinoError):
    """A migration file cannot be imported, or does not define a usable Migration."""


class PlanError(ClandestinoError):
    """The request names a migration that is not there or not in a usable state."""


class MigrationFailed(ClandestinoError):
    """A migration raised: a failed up() is not recorded, a failed down() leaves it applied."""

    exit_code = 1
    down_error: str | None = None

    def add_down_error(self, down_error: str | None) -> None:
        """Note that the clean-up down() after a failed up() raised as well."""
        if down_error:
            self.down_error = down_error
            self.message += f"; down() then failed too: {down_error}"
            # str() and repr() read args: they say the same as .message and one_line().
            self.args = (self.message,)


class UnfinishedMigration(ClandestinoError):
    """A step began and never finished (its process died between the step and its record)."""

    exit_code = 1


class DatabaseUnavailable(ClandestinoError):
    """The database could not be reached, or refused the connection or an operation."""

    exit_code = 3


class LockTimeout(ClandestinoError):
    """The migration lock stayed held by another deployer longer than the lock timeout."""

    exit_code = 3
