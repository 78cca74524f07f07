"""The OpenSearch client from CLANDESTINO_OPENSEARCH_* settings, seen through the search store's
client protocol (clandestino_elasticsearch.engine): opensearch-py takes a request's body parts
as one `body=`, and raises its own errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from clandestino.errors import ConfigurationError
from clandestino_elasticsearch import engine
from clandestino_elasticsearch.connect import SearchTarget
from clandestino_elasticsearch.engine import SearchClient, SearchError

__all__ = ["OpenSearchTarget", "opensearch_error"]

# The Elasticsearch 8/9 keywords that opensearch-py wants inside `body`.
_BODY_PARTS = (
    "query",
    "mappings",
    "settings",
    "doc",
    "upsert",
    "script",
    "sort",
    "aggs",
    "aliases",
)


@dataclass(frozen=True)
class OpenSearchTarget(SearchTarget):
    engine: ClassVar[str] = "OpenSearch"
    mode: ClassVar[str] = "OPENSEARCH"
    prefix: ClassVar[str] = "CLANDESTINO_OPENSEARCH_"

    def _client(self, options: dict[str, Any], extra: dict[str, Any]) -> Any:
        from opensearchpy import AsyncOpenSearch

        if "api_key" in options:
            raise ConfigurationError(
                f"{self.setting('API_KEY')} is set, but OpenSearch has no API keys",
                f"give a user and password in {self.setting('CONNECTION_STRING')} or"
                f" {self.setting('USER')}/{self.setting('PASSWORD')}",
            )
        if "basic_auth" in options:
            options["http_auth"] = options.pop("basic_auth")
        return AsyncOpenSearch(
            hosts=[self.node],
            timeout=self.timeout,
            max_retries=0,
            ssl_show_warn=False,
            **options,
            **extra,
        )

    def wrap(self, raw: Any) -> SearchClient:
        return SearchClient(raw, opensearch_error, _body_parts_in_body)

    def translate(self, error: BaseException) -> SearchError | None:
        return opensearch_error(error)


def _body_parts_in_body(path: str, arguments: dict[str, Any]) -> dict[str, Any]:
    if path.startswith("transport."):
        return arguments
    reshaped = dict(arguments)
    body: dict[str, Any] = {}
    if "document" in reshaped:
        body = reshaped.pop("document")
    for part in _BODY_PARTS:
        if part in reshaped:
            body = {**body, part: reshaped.pop(part)}
    if body:
        reshaped["body"] = body
    return reshaped


def opensearch_error(exc: BaseException) -> SearchError | None:
    """The store's error for what opensearch-py raised (None: not the client's)."""
    from opensearchpy import exceptions as os

    # opensearch-py's TransportError is the root of HTTP errors and lost connections alike.
    kinds: list[tuple[type[BaseException], type[SearchError]]] = [
        (os.SSLError, engine.TlsError),
        (os.ConnectionTimeout, engine.ConnectionTimeout),
        (os.ConnectionError, engine.TransportConnectionError),
        (os.NotFoundError, engine.NotFoundError),
        (os.ConflictError, engine.ConflictError),
        (os.AuthenticationException, engine.AuthenticationException),
        (os.AuthorizationException, engine.AuthorizationException),
    ]
    if isinstance(exc, os.ConnectionError) and _refused_certificate(exc):
        return engine.TlsError(str(exc))
    for library, ours in kinds:
        if isinstance(exc, library):
            if issubclass(ours, engine.ApiError):
                return ours(str(exc), _status(exc))
            return ours(str(exc))
    if isinstance(exc, os.TransportError):
        status = _status(exc)
        return engine.ApiError(str(exc), status) if status else engine.TransportError(str(exc))
    return None


def _refused_certificate(exc: BaseException) -> bool:
    """The async client reports a refused certificate as a plain ConnectionError carrying
    aiohttp's TLS error."""
    import ssl

    from aiohttp import ClientSSLError

    cause = getattr(exc, "info", None)
    return isinstance(cause, ClientSSLError | ssl.SSLError | ssl.CertificateError)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None
