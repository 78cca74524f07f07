"""Opening asyncpg connections, and turning driver errors into Clandestino's one-line errors.

Messages name the server as host:port/database and never carry the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from clandestino.config import mask_url
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.identity import deployer_identity
from clandestino.secret import Secret

if TYPE_CHECKING:
    import asyncpg

__all__ = ["ConnectionTarget", "application_name", "database_error", "no_answer"]

_SETTING = "CLANDESTINO_POSTGRES_CONNECTION_STRING"


def application_name() -> str:
    """Who we are in pg_stat_activity, so a waiting deployer can name the lock's holder."""
    return f"clandestino {deployer_identity()}"[:63]


@dataclass(frozen=True, repr=False)
class ConnectionTarget:
    """A parsed connection setting. It renders itself masked (`repr`, `str`, `format`): the
    password is reachable only through `dsn` and `conninfo`, which are Secrets."""

    dsn: Secret  # a postgresql:// URL, for asyncpg
    conninfo: Secret  # the setting as the user wrote it, for psycopg (libpq parses it as before)
    timeout: float
    where: str
    user: str
    masked: str

    @classmethod
    def parse(cls, text: str, timeout: float) -> ConnectionTarget:
        """Check the setting's shape before any connection, so a typo is exit 2, not exit 3.

        libpq decides as the original's driver did: a URL starts with postgresql:// or
        postgres://, anything else is a key=value string.
        """
        text = text.strip()
        if text.startswith(("postgresql://", "postgres://")):
            return _from_url(text, timeout)
        scheme = _SCHEME.match(text)
        if scheme is not None:
            name = scheme.group(1)
            if name.lower() in {"postgresql", "postgres"}:
                raise ConfigurationError(
                    f"{_SETTING} starts with {name}: but not {name}:// (two slashes)", _URL_HINT
                )
            raise ConfigurationError(
                f"{_SETTING} must start with postgresql:// or be a libpq key=value string"
                f" (it starts with {name}:)",
                _URL_HINT,
            )
        return _from_keywords(text, timeout)

    @property
    def url(self) -> str:
        """The URL asyncpg connects with, password included: never print it."""
        return self.dsn.reveal()

    def __repr__(self) -> str:
        return f"ConnectionTarget({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    async def connect(self) -> asyncpg.Connection:
        import asyncpg

        try:
            return await asyncpg.connect(
                self.dsn.reveal(),
                timeout=self.timeout,
                server_settings={"application_name": application_name()},
            )
        except Exception as exc:
            raise database_error(exc, self, "connect to") from exc


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# What asyncpg takes from a URL's query as client options; libpq options it sends to the server
# in the startup packet, as asyncpg sends any other query parameter, pass through as they are.
_CLIENT_OPTIONS = {
    "host", "port", "dbname", "user", "password", "passfile", "service", "sslmode", "sslcert",
    "sslkey", "sslrootcert", "sslnegotiation", "sslcrl", "sslpassword",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs",
    "krbsrvname", "gsslib",
}  # fmt: skip
_STARTUP_OPTIONS = {"application_name", "options", "client_encoding"}
_SECRET_OPTIONS = {"password", "sslpassword"}


def _from_url(url: str, timeout: float) -> ConnectionTarget:
    # Neither asyncpg nor libpq reads a password with an unencoded @ / ? # as the user meant,
    # and what they read instead (part of the password as host or port) would be printed.
    authority = url.partition("://")[2]
    malformed = authority.count("@") > 1 or "#" in authority
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        malformed = True
    if malformed or any("@" in piece for piece in (parts.path, parts.query)):
        raise ConfigurationError(
            f"{_SETTING} is malformed (a password with @ / ? # : must be percent-encoded)",
            _URL_HINT,
        )
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    database = unquote(parts.path.lstrip("/")) or (query.get("dbname") or ["(default)"])[0]
    user = unquote(parts.username or "") or (query.get("user") or ["(default user)"])[0]
    return ConnectionTarget(
        Secret(url), Secret(url), timeout, f"{host}:{port or 5432}/{database}", user, mask_url(url)
    )


def _from_keywords(text: str, timeout: float) -> ConnectionTarget:
    options = _libpq_parse(text)
    unknown = sorted(options.keys() - _CLIENT_OPTIONS - _STARTUP_OPTIONS - {"connect_timeout"})
    if unknown:
        raise ConfigurationError(
            f"{_SETTING} sets {', '.join(unknown)}, which asyncpg does not support",
            "remove it, or set it on the server or the role instead",
        )
    if "connect_timeout" in options:
        timeout = _timeout(options.pop("connect_timeout"))
    # Everything percent-encoded, so asyncpg reads back exactly what libpq read. asyncpg takes a
    # database from the path before the query's dbname, even an empty one, so it goes there.
    query = {k: v for k, v in options.items() if k not in {"user", "password", "dbname"}}
    credentials = quote(options.get("user", ""), safe="")
    if "password" in options:
        credentials += ":" + quote(options["password"], safe="")
    path = "/" + quote(options["dbname"], safe="") if options.get("dbname") else ""
    dsn = f"postgresql://{credentials}{'@' if credentials else ''}{path}?{urlencode(query)}"
    host = options.get("host") or "localhost"
    where = f"{host}:{options.get('port') or 5432}/{options.get('dbname') or '(default)'}"
    shown = " ".join(
        f"{key}=***" if key in _SECRET_OPTIONS else f"{key}={_libpq_quote(value)}"
        for key, value in options.items()
    )
    return ConnectionTarget(
        Secret(dsn), Secret(text), timeout, where, options.get("user") or "(default user)", shown
    )


def _libpq_parse(text: str) -> dict[str, str]:
    """libpq's own parsing (through psycopg, imported only for key=value strings)."""
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as exc:
        raise ConfigurationError(
            f"{_SETTING} is a key=value string, which needs psycopg to be read",
            "pip install 'clandestino[postgres]', or use a postgresql:// URL",
        ) from exc
    try:
        parsed = conninfo_to_dict(text)
    except ProgrammingError:
        # libpq's message quotes the text around the fault, which may be the password.
        raise ConfigurationError(
            f"{_SETTING} is not a valid key=value string (libpq refused it)",
            "write key=value pairs separated by spaces; quote a value with spaces or quotes in"
            " it as 'a b\\'c'",
        ) from None
    return {key: str(value) for key, value in parsed.items() if value is not None}


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigurationError(f"{_SETTING}: connect_timeout is not a number") from None
    # libpq: zero, negative or unset means wait forever; we keep a bound.
    return seconds if seconds > 0 else 3600.0


def _libpq_quote(value: str) -> str:
    if value and not any(char.isspace() or char in "'\\" for char in value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


_URL_HINT = (
    "use postgresql://user:password@host:5432/database (percent-encode special characters)"
    " or host=... dbname=... user=... password=..."
)


def no_answer(target: ConnectionTarget) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"PostgreSQL at {target.where} did not answer within {target.timeout:g} s",
        "check that the server is up, or raise CLANDESTINO_CONNECT_TIMEOUT",
    )


def database_error(exc: BaseException, target: ConnectionTarget, doing: str) -> ClandestinoError:
    """One clear line for what the driver raised while we tried to `doing` the database."""
    # Imported here, as the driver is: the snapshot of a no-op run needs neither.
    import asyncio
    import ssl

    import asyncpg

    server = f"PostgreSQL at {target.where}"
    checks: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str, str]] = [
        (
            asyncpg.InvalidPasswordError,
            f"{server} refused the password of user {target.user}",
            f"check the password in {_SETTING}",
        ),
        (
            asyncpg.InvalidCatalogNameError,
            f"{server}: the database does not exist",
            f"create it, or fix the database name in {_SETTING}",
        ),
        (
            asyncpg.InvalidAuthorizationSpecificationError,
            f"{server} refused user {target.user}: {exc}",
            f"check the user in {_SETTING} and the server's pg_hba.conf",
        ),
        (
            asyncpg.InsufficientPrivilegeError,
            f"{server}: permission denied to {doing} the control table: {exc}",
            "grant the user CREATE on the schema, or create the table as its owner",
        ),
        (
            ssl.SSLError,
            f"{server}: TLS failed: {exc}",
            f"check the sslmode and certificates in {_SETTING}",
        ),
        (
            (OSError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError),
            f"cannot {doing} {server}: {exc}",
            "check that the server is up and reachable",
        ),
    ]
    if isinstance(exc, asyncpg.ClientConfigurationError | ValueError):
        return ConfigurationError(f"{_SETTING} is not usable: {exc}", _URL_HINT)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return no_answer(target)
    for kinds, message, hint in checks:
        if isinstance(exc, kinds):
            return DatabaseUnavailable(message, hint)
    return DatabaseUnavailable(f"{server}: could not {doing} it: {type(exc).__name__}: {exc}")
