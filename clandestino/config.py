"""Settings, read once per call: the environment first, then one settings file.

The file is the one the original tool read through python-decouple's AutoConfig: the first
`settings.ini` (section `[settings]`) or `.env` from the working directory upward (see
`clandestino.settings_file`). Every value is stripped of surrounding whitespace, wherever it came
from, and the Settings remember where each came from, for messages. Nothing here runs at import.
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
from clandestino.secret import mask_url

__all__ = [
    "CONNECT_TIMEOUT",
    "CONTROL_TABLE",
    "ENVIRONMENT",
    "EVENT_LOOP",
    "KNOWN_SETTINGS",
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
    "read_settings_file",
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

# Every setting this distribution reads, backends included: a near-miss of one of these is a typo.
KNOWN_SETTINGS = (
    MIGRATION_REPO,
    MIGRATIONS_DIR,
    CONTROL_TABLE,
    LOCK_TIMEOUT,
    CONNECT_TIMEOUT,
    LOCK_LEASE,
    MIGRATION_TIMEOUT,
    STRICT,
    EVENT_LOOP,
    "CLANDESTINO_SQLITE_DB_PATH",
    "CLANDESTINO_POSTGRES_CONNECTION_STRING",
    "CLANDESTINO_POSTGRES_SCHEMA",
    "CLANDESTINO_MONGO_CONNECTION_STRING",
    "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING",
    "CLANDESTINO_ELASTICSEARCH_USER",
    "CLANDESTINO_ELASTICSEARCH_PASSWORD",
    "CLANDESTINO_ELASTICSEARCH_API_KEY",
    "CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS",
    "CLANDESTINO_ELASTICSEARCH_CA_CERTS",
    "CLANDESTINO_BUCKET_CONNECTION_STRING",
    "CLANDESTINO_BUCKET_ACCESS_KEY",
    "CLANDESTINO_BUCKET_SECRET_KEY",
    "CLANDESTINO_QDRANT_CONNECTION_STRING",
    "CLANDESTINO_QDRANT_API_KEY",
    "CLANDESTINO_OPENSEARCH_CONNECTION_STRING",
    "CLANDESTINO_OPENSEARCH_USER",
    "CLANDESTINO_OPENSEARCH_PASSWORD",
    "CLANDESTINO_OPENSEARCH_VERIFY_CERTS",
    "CLANDESTINO_OPENSEARCH_CA_CERTS",
)
ENVIRONMENT = "the environment"
OVERRIDE = "the caller's argument"

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
    # The settings file found (settings.ini or .env), and where each value came from.
    settings_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)

    def source(self, name: str) -> str:
        """Where `name` was read: the environment, the settings file's path, or the caller."""
        return self.sources.get(name, ENVIRONMENT)

    def strict_source(self) -> str:
        """`CLANDESTINO_STRICT=true (from ...)` when the setting turns strictness on, else ""."""
        return self.origin(STRICT) if self.strict else ""

    def origin(self, name: str) -> str:
        """`NAME=value (from <source>)` for a message; only for settings that hold no secret."""
        return f"{name}={self.get(name)} (from {self.source(name)})"

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
    """Merge the settings file, the environment and explicit overrides (in rising priority)."""
    where = (cwd or Path.cwd()).absolute()
    file = _settings_file(where)
    values, sources = _gather(file, os.environ if environ is None else environ, overrides or {})
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
        settings_file=file,
        sources=sources,
    )


def _settings_file(where: Path) -> Path | None:
    from clandestino.settings_file import find_settings_file

    found = find_settings_file(str(where))
    return Path(found) if found is not None else None


def _gather(
    file: Path | None, environ: Mapping[str, str], overrides: Mapping[str, str | None]
) -> tuple[dict[str, str], dict[str, str]]:
    """Values stripped of surrounding whitespace, each with where it was read."""
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    layers: list[tuple[str, Mapping[str, str | None]]] = [
        (str(file), read_settings_file(file) if file is not None else {}),
        (ENVIRONMENT, environ),
        (OVERRIDE, overrides),
    ]
    for source, layer in layers:
        for name, value in layer.items():
            if value is not None:
                values[name] = value.strip()
                sources[name] = source
    return values, sources


def read_settings_file(path: Path) -> dict[str, str]:
    """The values of a settings.ini's [settings] section, or of a .env."""
    return _read_ini(path) if path.name == "settings.ini" else _read_dotenv(path)


def _read_ini(path: Path) -> dict[str, str]:
    # Imported here: configparser is needed only when a settings.ini is found.
    import configparser

    # decouple reads settings.ini with a plain ConfigParser: `%` interpolation included, and
    # option names case-insensitive (they match the upper-case names we look up).
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
        if not parser.has_section("settings"):
            return {}
        return {name.upper(): value for name, value in parser.items("settings")}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}", "fix or remove the file") from exc
    except configparser.InterpolationError as exc:
        # The message would quote the value, which may be a password.
        raise ConfigurationError(
            f"{path}: the value of {exc.option.upper()} has a `%` that is not `%%`",
            "write a literal % as %% in settings.ini, as python-decouple requires",
        ) from None
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        where = f", line {line}" if line else ""
        raise ConfigurationError(
            f"{path}{where}: cannot parse it as an ini file ({type(exc).__name__})",
            "write a [settings] section with one NAME = value per line",
        ) from None


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


def raw_values(cwd: Path | None = None) -> dict[str, str]:
    """The settings file and the environment merged, without any checking, for a best-effort look
    (secrets to hide in output) before the settings are read properly."""
    values: dict[str, str] = {}
    with contextlib.suppress(ConfigurationError):
        file = _settings_file((cwd or Path.cwd()).absolute())
        values.update(read_settings_file(file) if file is not None else {})
    values.update(os.environ)
    return {name: value.strip() for name, value in values.items()}
