"""Settings, read once per call from the environment and a `.env` file in the working directory.

The environment wins over `.env`, as with python-dotenv's defaults. Nothing here runs at import.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clandestino.errors import ConfigurationError

__all__ = [
    "CONNECT_TIMEOUT",
    "CONTROL_TABLE",
    "EVENT_LOOP",
    "LOCK_LEASE",
    "LOCK_TIMEOUT",
    "MIGRATIONS_DIR",
    "MIGRATION_REPO",
    "MIGRATION_TIMEOUT",
    "STRICT",
    "Settings",
    "check_identifier",
    "load_settings",
    "mask_url",
    "parse_flag",
    "raw_values",
]

MIGRATION_REPO = "CLANDESTINO_MIGRATION_REPO"
MIGRATIONS_DIR = "CLANDESTINO_MIGRATIONS_DIR"
CONTROL_TABLE = "CLANDESTINO_CONTROL_TABLE"
LOCK_TIMEOUT = "CLANDESTINO_LOCK_TIMEOUT"
CONNECT_TIMEOUT = "CLANDESTINO_CONNECT_TIMEOUT"
LOCK_LEASE = "CLANDESTINO_LOCK_LEASE"
MIGRATION_TIMEOUT = "CLANDESTINO_MIGRATION_TIMEOUT"
STRICT = "CLANDESTINO_STRICT"
EVENT_LOOP = "CLANDESTINO_EVENT_LOOP"

DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCK_LEASE = 30.0
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class Settings:
    """What one run is configured with; `values` keeps every raw variable for the backends."""

    cwd: Path
    values: Mapping[str, str] = field(repr=False)
    migrations_dir: Path
    repository: str | None
    control_table: str
    lock_timeout: float
    connect_timeout: float
    # How long a lock document stays valid without renewal (backends with no session locks).
    lock_lease: float
    # How long one up() or down() may run before it is stopped as a failure; None: no limit.
    migration_timeout: float | None
    # Refuse, instead of warning, when records and files disagree (missing, changed, out of order).
    strict: bool
    # The CLI's event loop: "uvloop", "asyncio", or None for uvloop when it is installed.
    event_loop: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """A raw setting, or `default` when it is unset or empty."""
        value = self.values.get(name)
        return value if value else default

    def require(self, name: str, hint: str) -> str:
        """A setting the chosen backend cannot do without."""
        value = self.get(name)
        if not value:
            raise ConfigurationError(f"{name} is not set", hint)
        return value

    def path(self, name: str, default: str) -> Path:
        """A setting holding a path, made absolute against the working directory."""
        return self.cwd / Path(self.get(name, default) or default).expanduser()


def check_identifier(value: str, setting: str) -> str:
    """Refuse anything but a plain SQL identifier: control names end up inside statements."""
    if not _IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            f"{setting}={value!r} is not a plain identifier",
            "use letters, digits and underscores, not starting with a digit, at most 63 in all",
        )
    return value


def load_settings(
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> Settings:
    """Merge `.env`, the environment and explicit overrides (in rising priority)."""
    where = (cwd or Path.cwd()).absolute()
    values: dict[str, str] = dict(_read_dotenv(where / ".env"))
    values.update(os.environ if environ is None else environ)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return Settings(
        cwd=where,
        values=values,
        migrations_dir=where / Path(values.get(MIGRATIONS_DIR) or "migrations").expanduser(),
        repository=values.get(MIGRATION_REPO) or None,
        control_table=check_identifier(values.get(CONTROL_TABLE) or "clandestino", CONTROL_TABLE),
        lock_timeout=_positive_seconds(
            values.get(LOCK_TIMEOUT), DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT
        ),
        connect_timeout=_positive_seconds(
            values.get(CONNECT_TIMEOUT), DEFAULT_CONNECT_TIMEOUT, CONNECT_TIMEOUT
        ),
        lock_lease=_positive_seconds(values.get(LOCK_LEASE), DEFAULT_LOCK_LEASE, LOCK_LEASE),
        migration_timeout=(
            _positive_seconds(text, 0.0, MIGRATION_TIMEOUT)
            if (text := values.get(MIGRATION_TIMEOUT))
            else None
        ),
        strict=parse_flag(values.get(STRICT), STRICT, default=False),
        event_loop=_event_loop(values.get(EVENT_LOOP)),
    )


def _event_loop(text: str | None) -> str | None:
    if not text:
        return None
    if text.lower() not in {"uvloop", "asyncio"}:
        raise ConfigurationError(
            f"{EVENT_LOOP}={text!r} names no event loop", "use uvloop or asyncio, or leave it unset"
        )
    return text.lower()


def parse_flag(text: str | None, setting: str, default: bool) -> bool:
    """A true/false setting: 1/0, true/false, yes/no, on/off, any case."""
    if not text:
        return default
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{setting}={text!r} is not true or false", "use true or false")


def _positive_seconds(text: str | None, default: float, setting: str) -> float:
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigurationError(
            f"{setting}={text!r} is not a number of seconds", "set it to a positive number like 60"
        )
    return seconds


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    # Imported here: python-dotenv costs tens of milliseconds, and most runs have no .env.
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}", "fix or remove the file") from exc
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            raise ConfigurationError(
                f"{path}, line {line}: cannot parse {binding.original.string.strip()!r}",
                "write each setting as NAME=value",
            )
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def mask_url(url: str) -> str:
    """`url` with any password (and query parameters that carry secrets) replaced by ***."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode(
        [(k, "***" if _SECRET_KEY.search(k) else v) for k, v in parse_qsl(parts.query)],
        safe="*/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SECRET_KEY = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def raw_values(cwd: Path | None = None) -> dict[str, str]:
    """`.env` and the environment merged, without any checking, for a best-effort look (secrets to
    hide in output) before the settings are read properly."""
    values: dict[str, str] = {}
    with contextlib.suppress(ConfigurationError):
        values.update(_read_dotenv((cwd or Path.cwd()) / ".env"))
    values.update(os.environ)
    return values
