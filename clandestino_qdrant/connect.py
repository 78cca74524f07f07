"""Reaching Qdrant: the original's two settings, one client per run, driver errors as one line.

CLANDESTINO_QDRANT_CONNECTION_STRING is a server's http(s):// URL, as in the original, or, for
tests and trials, qdrant-client's local mode: `:memory:` (one process only) or `file:///folder`
(the folder is locked by one process at a time). Local mode is qdrant-client's in-process
implementation of Qdrant's API, not a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from clandestino.config import Settings
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.secret import ConnectionString, Secret

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

__all__ = ["QdrantTarget", "database_error"]

_SETTING = "CLANDESTINO_QDRANT_CONNECTION_STRING"
_URL_HINT = (
    "use http://host:6333 (https:// for TLS), or file:///folder for qdrant-client's local mode"
)


@dataclass(frozen=True)
class QdrantTarget:
    url: ConnectionString
    api_key: Secret | None
    timeout: float
    # qdrant-client's local mode: ":memory:" or a folder; None for a server.
    local: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> QdrantTarget:
        text = settings.require(_SETTING, _URL_HINT)
        key = settings.get("CLANDESTINO_QDRANT_API_KEY")
        return cls.parse(text, Secret(key) if key else None, settings.connect_timeout)

    @classmethod
    def parse(cls, text: str, api_key: Secret | None, timeout: float = 10.0) -> QdrantTarget:
        url = ConnectionString(text)
        if text == ":memory:":
            return cls(url, api_key, timeout, local=":memory:")
        parts = urlsplit(text)
        if parts.scheme == "file" and parts.path:
            return cls(url, api_key, timeout, local=unquote(parts.path))
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConfigurationError(
                f"{_SETTING} is not a Qdrant URL (got {url.masked!r})", _URL_HINT
            )
        return cls(url, api_key, timeout)

    @property
    def where(self) -> str:
        if self.local is not None:
            return f"qdrant-client local mode ({self.local})"
        return urlsplit(self.url.reveal()).netloc.rpartition("@")[2]

    def client(self) -> AsyncQdrantClient:
        from qdrant_client import AsyncQdrantClient

        if self.local == ":memory:":
            return AsyncQdrantClient(location=":memory:")
        if self.local is not None:
            return AsyncQdrantClient(path=self.local)
        return AsyncQdrantClient(
            url=self.url.reveal(),
            api_key=self.api_key.reveal() if self.api_key else None,
            timeout=max(1, round(self.timeout)),
            # One client per run; its version check would be one more round trip.
            check_compatibility=False,
        )


def database_error(exc: BaseException, target: QdrantTarget, doing: str) -> ClandestinoError:
    """One clear line for what qdrant-client raised while we tried to `doing` the database."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    server = f"Qdrant at {target.where}"
    if isinstance(exc, UnexpectedResponse):
        if exc.status_code in {401, 403}:
            return DatabaseUnavailable(
                f"{server} refused the API key ({exc.status_code})",
                "check CLANDESTINO_QDRANT_API_KEY",
            )
        return DatabaseUnavailable(f"{server} could not {doing} it: HTTP {exc.status_code}")
    if isinstance(exc, ResponseHandlingException | OSError | TimeoutError):
        return DatabaseUnavailable(
            f"cannot {doing} {server}: {type(exc).__name__}",
            f"check that the server is up and that {_SETTING} names it",
        )
    if isinstance(exc, RuntimeError) and "already accessed" in str(exc):
        # Local mode locks its folder: a second process cannot open it.
        return DatabaseUnavailable(
            f"{server} is in use by another process",
            "local mode serves one process at a time; use a Qdrant server for several",
        )
    return DatabaseUnavailable(f"{server}: could not {doing} it: {type(exc).__name__}: {exc}")
