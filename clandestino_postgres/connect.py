"""Opening asyncpg connections, and turning driver errors into Clandestino's one-line errors.

Messages name the server as host:port/database and never carry the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from clandestino.config import mask_url
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.identity import deployer_identity

if TYPE_CHECKING:
    import asyncpg

__all__ = ["ConnectionTarget", "application_name", "database_error", "no_answer"]

_SETTING = "CLANDESTINO_POSTGRES_CONNECTION_STRING"


def application_name() -> str:
    """Who we are in pg_stat_activity, so a waiting deployer can name the lock's holder."""
    return f"clandestino {deployer_identity()}"[:63]


@dataclass(frozen=True)
class ConnectionTarget:
    url: str
    timeout: float
    where: str
    user: str

    @classmethod
    def parse(cls, url: str, timeout: float) -> ConnectionTarget:
        """Check the URL's shape before any connection, so a typo is exit 2, not exit 3."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"{_SETTING} is malformed: {exc}", _URL_HINT) from exc
        if parts.scheme not in {"postgres", "postgresql"}:
            raise ConfigurationError(
                f"{_SETTING} must start with postgresql:// (got {mask_url(url)!r})", _URL_HINT
            )
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or ["localhost"])[0]
        database = unquote(parts.path.lstrip("/")) or (query.get("dbname") or ["(default)"])[0]
        where = f"{host}:{port or 5432}/{database}"
        return cls(url, timeout, where, unquote(parts.username or "") or "(default user)")

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    async def connect(self) -> asyncpg.Connection:
        import asyncpg

        try:
            return await asyncpg.connect(
                self.url,
                timeout=self.timeout,
                server_settings={"application_name": application_name()},
            )
        except Exception as exc:
            raise database_error(exc, self, "connect to") from exc


_URL_HINT = "use postgresql://user:password@host:5432/database (percent-encode special characters)"


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
