"""Reaching MinIO: the original's three settings, one client per run, driver errors as one line.

As in the original, only the scheme (https means TLS) and host:port of the connection string are
used. The keys are held as Secrets from the moment they are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from clandestino.config import Settings
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.secret import ConnectionString, Secret

if TYPE_CHECKING:
    from miniopy_async.api import Minio

__all__ = ["MinioTarget", "database_error"]

_SETTING = "CLANDESTINO_BUCKET_CONNECTION_STRING"
_KEYS = "CLANDESTINO_BUCKET_ACCESS_KEY and CLANDESTINO_BUCKET_SECRET_KEY"
_URL_HINT = "use http://host:9000 (https:// for TLS)"
_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
}


@dataclass(frozen=True)
class MinioTarget:
    url: ConnectionString
    endpoint: str
    secure: bool
    access_key: Secret | None
    secret_key: Secret | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> MinioTarget:
        text = settings.require(_SETTING, _URL_HINT)
        return cls.parse(text, settings.get, settings.connect_timeout)

    @classmethod
    def parse(
        cls, text: str, get: Callable[[str], str | None], timeout: float = 10.0
    ) -> MinioTarget:
        """Check the URL's shape before connecting, so a typo is exit 2, not exit 3."""
        url = ConnectionString(text)
        parts = urlsplit(text)
        endpoint = parts.netloc.rpartition("@")[2]
        if parts.scheme not in {"http", "https"} or not endpoint:
            raise ConfigurationError(
                f"{_SETTING} must be http://host:port or https://host:port (got {url.masked!r})",
                _URL_HINT,
            )
        access = get("CLANDESTINO_BUCKET_ACCESS_KEY")
        secret = get("CLANDESTINO_BUCKET_SECRET_KEY")
        if bool(access) != bool(secret):
            raise ConfigurationError(f"set both {_KEYS}, or neither for anonymous access")
        return cls(
            url,
            endpoint,
            parts.scheme == "https",
            Secret(access) if access else None,
            Secret(secret) if secret else None,
            timeout,
        )

    @property
    def where(self) -> str:
        return self.endpoint

    def client(self) -> Minio:
        """A client with a session of our own: bounded connect time, no retries (a retried
        conditional write could fail on its own first success)."""
        import aiohttp
        from miniopy_async.api import Minio

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=max(30.0, self.timeout)
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key.reveal() if self.access_key else None,
            secret_key=self.secret_key.reveal() if self.secret_key else None,
            secure=self.secure,
            session=aiohttp.ClientSession(timeout=timeout),
        )


def database_error(exc: BaseException, target: MinioTarget, doing: str) -> ClandestinoError:
    """One clear line for what the client raised while we tried to `doing` the server."""
    from miniopy_async.error import S3Error

    server = f"MinIO at {target.where}"
    if isinstance(exc, S3Error):
        if exc.code in _REFUSED:
            return DatabaseUnavailable(
                f"{server} refused the credentials: {exc.message}", f"check {_KEYS}"
            )
        return DatabaseUnavailable(f"{server} could not {doing} it: {exc.code}: {exc.message}")
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailable(
            f"cannot {doing} {server} within {target.timeout:g} s",
            "check that the server is up and reachable, or raise CLANDESTINO_CONNECT_TIMEOUT",
        )
    if isinstance(exc, OSError) or type(exc).__module__.startswith("aiohttp"):
        return DatabaseUnavailable(
            f"cannot {doing} {server}: {exc}",
            f"check that the server is up and that {_SETTING} names it",
        )
    return DatabaseUnavailable(f"{server}: could not {doing} it: {type(exc).__name__}: {exc}")
