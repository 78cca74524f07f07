"""Opening the MongoDB client, and turning driver errors into Clandestino's one-line errors.

The URL is kept as a ConnectionString from the moment it is read: messages name the server as
hosts/database or the masked URL, and never carry the password or a session token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.identity import deployer_identity
from clandestino.secret import ConnectionString

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

__all__ = ["MongoTarget", "ServerFacts", "database_error"]

_SETTING = "CLANDESTINO_MONGO_CONNECTION_STRING"
_URL_HINT = "use mongodb://user:password@host:27017/database (the database holds the records)"


@dataclass(frozen=True)
class ServerFacts:
    """What the server's hello told us: transactions, and its clock against ours."""

    transactions: bool
    clock_offset: timedelta


@dataclass(frozen=True)
class MongoTarget:
    url: ConnectionString
    timeout: float
    where: str
    database: str

    @classmethod
    def parse(cls, text: str, timeout: float) -> MongoTarget:
        """Check the URL's shape before connecting, so a typo is exit 2, not exit 3."""
        url = ConnectionString(text)
        scheme, separator, rest = text.partition("://")
        if not separator or scheme not in {"mongodb", "mongodb+srv"}:
            raise ConfigurationError(
                f"{_SETTING} must start with mongodb:// or mongodb+srv:// (got {url.masked!r})",
                _URL_HINT,
            )
        # As the driver splits it: the hosts follow the last @ before the path.
        authority, _, path = rest.rpartition("@")[2].partition("/")
        database = unquote(path.partition("?")[0])
        if not database:
            raise ConfigurationError(
                f"{_SETTING} names no database ({url.masked})",
                "add the database that holds the records: mongodb://host:27017/mydb",
            )
        return cls(url, timeout, f"{authority}/{database}", database)

    @property
    def masked(self) -> str:
        return self.url.masked

    def client(self, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
        """A client of the server; `options` are the driver's own (a fleet's maxPoolSize)."""
        from pymongo import AsyncMongoClient

        timeout_ms = max(1, round(self.timeout * 1000))
        try:
            return AsyncMongoClient(
                self.url.reveal(),
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                appname=f"clandestino {deployer_identity()}",
                tz_aware=True,
                connect=False,
                **options,
            )
        except Exception as exc:
            raise database_error(exc, self, "connect to") from exc

    async def facts(self, client: AsyncMongoClient[dict[str, Any]]) -> ServerFacts:
        """Reach the server once, failing early and clearly if it cannot be reached."""
        try:
            sent = datetime.now(UTC)
            hello = await client.admin.command("hello")
            await client[self.database].command("ping")
        except Exception as exc:
            raise database_error(exc, self, "connect to") from exc
        received = datetime.now(UTC)
        local_time = hello.get("localTime")
        offset = timedelta(0)
        if isinstance(local_time, datetime):
            server_now = local_time if local_time.tzinfo else local_time.replace(tzinfo=UTC)
            offset = server_now - (sent + (received - sent) / 2)
        transactions = bool(hello.get("setName") or hello.get("msg") == "isdbgrid")
        return ServerFacts(transactions, offset)


def database_error(exc: BaseException, target: MongoTarget, doing: str) -> ClandestinoError:
    """One clear line for what the driver raised while we tried to `doing` the database."""
    from pymongo import errors

    server = f"MongoDB at {target.where}"
    if isinstance(exc, errors.ConfigurationError | errors.InvalidURI | ValueError):
        # The driver's text may quote the URL or a part of it.
        reason = str(exc).replace(target.url.reveal(), target.masked)
        return ConfigurationError(f"{_SETTING} is not usable: {reason}", _URL_HINT)
    if isinstance(exc, errors.OperationFailure) and exc.code in {18, 13}:
        what = "refused the credentials" if exc.code == 18 else "refused the operation"
        return DatabaseUnavailable(
            f"{server} {what}: {exc.details.get('errmsg') if exc.details else exc}",
            f"check the user and password in {_SETTING} and its roles",
        )
    if isinstance(exc, errors.ServerSelectionTimeoutError):
        return DatabaseUnavailable(
            f"cannot {doing} {server} within {target.timeout:g} s",
            "check that the server is up and reachable, or raise CLANDESTINO_CONNECT_TIMEOUT",
        )
    if isinstance(exc, errors.PyMongoError | OSError):
        return DatabaseUnavailable(f"cannot {doing} {server}: {exc}", "check the server")
    return DatabaseUnavailable(f"{server}: could not {doing} it: {type(exc).__name__}: {exc}")
