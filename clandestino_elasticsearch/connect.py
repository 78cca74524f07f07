"""A search engine's client from settings, and client errors as Clandestino's one-line errors.

One target for both engines: Elasticsearch reads CLANDESTINO_ELASTICSEARCH_*, OpenSearch the same
settings under CLANDESTINO_OPENSEARCH_* (clandestino_opensearch). Certificates are verified unless
..._VERIFY_CERTS says otherwise. Messages name the node as scheme://host:port and never carry a
password or an API key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit, urlunsplit

from clandestino.config import Settings, parse_flag
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.secret import ConnectionString, Secret
from clandestino_elasticsearch import engine
from clandestino_elasticsearch.engine import SearchClient, SearchError

__all__ = ["ElasticsearchTarget", "SearchTarget", "database_error"]

_URL_HINT = "use http(s)://host:9200, with user:password@ in it or in their own settings"


@dataclass(frozen=True)
class SearchTarget:
    """Where a search engine's node is and how to reach it; each engine a subclass."""

    engine: ClassVar[str]  # the engine's name in messages
    mode: ClassVar[str]  # CLANDESTINO_MIGRATION_REPO's value for it
    prefix: ClassVar[str]  # its settings' common start

    node: str
    timeout: float
    where: str
    options: dict[str, Any] = field(repr=False)

    def setting(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        URL, USER, PASSWORD, API_KEY, VERIFY_CERTS, CA_CERTS = (
            f"{cls.prefix}{name}"
            for name in (
                "CONNECTION_STRING", "USER", "PASSWORD", "API_KEY", "VERIFY_CERTS", "CA_CERTS"
            )
        )  # fmt: skip
        url = ConnectionString(settings.require(URL, "set it to https://host:9200"))
        scheme, separator, _ = url.reveal().partition("://")
        if not separator or scheme not in {"http", "https"}:
            raise ConfigurationError(
                f"{URL} must be an http:// or https:// URL (got {url.masked!r})", _URL_HINT
            )
        try:
            parts = urlsplit(url.reveal())
            port = parts.port
        except ValueError:
            # urllib's message quotes the part it could not read, which may be the password.
            raise ConfigurationError(f"{URL} is malformed: {url.masked}", _URL_HINT) from None
        if not parts.hostname:
            raise ConfigurationError(f"{URL} names no host (got {url.masked!r})", _URL_HINT)
        host = parts.hostname + (f":{port}" if port else "")
        node = urlunsplit((parts.scheme, host, parts.path, "", ""))
        verify = parse_flag(settings.get(VERIFY_CERTS), VERIFY_CERTS, default=True)
        options: dict[str, Any] = {"verify_certs": verify}
        user = unquote(parts.username or "") or settings.get(USER)
        password = Secret(unquote(parts.password or "") or settings.get(PASSWORD) or "")
        if user:
            options["basic_auth"] = (user, password)
        if api_key := settings.get(API_KEY):
            options["api_key"] = Secret(api_key)
        if ca_certs := settings.get(CA_CERTS):
            options["ca_certs"] = str(settings.cwd / ca_certs)
        return cls(node, settings.connect_timeout, f"{parts.scheme}://{host}", options)

    def client(self, **extra: Any) -> Any:
        """A new client of the engine's own library (what migrations and a fleet's code use);
        `extra` are the client's own options (a fleet's connections_per_node)."""
        # The secrets are revealed only here, into the client.
        options = {name: _revealed(value) for name, value in self.options.items()}
        try:
            return self._client(options, extra)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{self.setting('CONNECTION_STRING')} is not usable: {exc}", _URL_HINT
            ) from exc

    def search_client(self, **extra: Any) -> SearchClient:
        """A new client, wrapped for the store (its vocabulary, its errors)."""
        return self.wrap(self.client(**extra))

    def wrap(self, raw: Any) -> SearchClient:
        """The store's view of a client of the engine's library (a fleet's shared one)."""
        raise NotImplementedError

    def translate(self, error: BaseException) -> SearchError | None:
        """The store's error for what the engine's library raised (None: not the library's)."""
        raise NotImplementedError

    def _client(self, options: dict[str, Any], extra: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def check_server(self, client: SearchClient) -> None:
        """Connect: ask the node who it is, and refuse one the client cannot serve."""
        await client.info()


@dataclass(frozen=True)
class ElasticsearchTarget(SearchTarget):
    engine: ClassVar[str] = "Elasticsearch"
    mode: ClassVar[str] = "ELASTICSEARCH"
    prefix: ClassVar[str] = "CLANDESTINO_ELASTICSEARCH_"

    def _client(self, options: dict[str, Any], extra: dict[str, Any]) -> Any:
        from elasticsearch import AsyncElasticsearch

        return AsyncElasticsearch(
            self.node, request_timeout=self.timeout, max_retries=0, **options, **extra
        )

    def wrap(self, raw: Any) -> SearchClient:
        return SearchClient(raw, elasticsearch_error)

    def translate(self, error: BaseException) -> SearchError | None:
        return elasticsearch_error(error)

    async def check_server(self, client: SearchClient) -> None:
        from clandestino_elasticsearch.version import check_server_version

        await check_server_version(client, self.where)


def _revealed(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple):
        return tuple(_revealed(item) for item in value)
    return value


def elasticsearch_error(exc: BaseException) -> SearchError | None:
    """The store's error for what the Elasticsearch client raised (None: not the client's)."""
    from elastic_transport import ConnectionError, ConnectionTimeout, TlsError, TransportError
    from elasticsearch import (
        ApiError,
        AuthenticationException,
        AuthorizationException,
        ConflictError,
        NotFoundError,
        UnsupportedProductError,
    )

    kinds: list[tuple[type[BaseException], type[SearchError]]] = [
        (TlsError, engine.TlsError),
        (ConnectionTimeout, engine.ConnectionTimeout),
        (ConnectionError, engine.TransportConnectionError),
        (TransportError, engine.TransportError),
        (UnsupportedProductError, engine.UnsupportedProductError),
        (NotFoundError, engine.NotFoundError),
        (ConflictError, engine.ConflictError),
        (AuthenticationException, engine.AuthenticationException),
        (AuthorizationException, engine.AuthorizationException),
    ]
    for library, ours in kinds:
        if isinstance(exc, library):
            if issubclass(ours, engine.ApiError):
                return ours(str(exc), _status(exc))
            return ours(str(exc))
    if isinstance(exc, ApiError):
        return engine.ApiError(str(exc), _status(exc))
    return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "meta", None), "status", None
    )
    return status if isinstance(status, int) else None


def database_error(exc: BaseException, target: SearchTarget, doing: str) -> ClandestinoError:
    """One clear line for what the client raised while we tried to `doing` the node."""
    URL, USER, PASSWORD, API_KEY, VERIFY_CERTS, CA_CERTS = (
        target.setting(name)
        for name in ("CONNECTION_STRING", "USER", "PASSWORD", "API_KEY", "VERIFY_CERTS", "CA_CERTS")
    )
    node = f"{target.engine} at {target.where}"
    if not isinstance(exc, SearchError):
        exc = target.translate(exc) or exc
    if isinstance(exc, engine.TlsError):
        return DatabaseUnavailable(
            f"{node}: the TLS certificate was not accepted: {_first_line(exc)}",
            f"give its CA in {CA_CERTS}, or turn checking off with {VERIFY_CERTS}=false",
        )
    if isinstance(exc, engine.AuthenticationException):
        return DatabaseUnavailable(
            f"{node} refused the credentials",
            f"check the user and password in {URL} or {USER}/{PASSWORD}, or {API_KEY}",
        )
    if isinstance(exc, engine.AuthorizationException):
        return DatabaseUnavailable(
            f"{node}: permission denied to {doing} the control index: {_first_line(exc)}",
            "grant the user the index privileges on the control index",
        )
    if isinstance(exc, engine.ConnectionTimeout):
        return DatabaseUnavailable(
            f"{node} did not answer within {target.timeout:g} s",
            "check that the node is up, or raise CLANDESTINO_CONNECT_TIMEOUT",
        )
    if isinstance(exc, engine.TransportError):
        return DatabaseUnavailable(
            f"cannot {doing} {node}: {_first_line(exc)}", "check that the node is up and reachable"
        )
    if isinstance(exc, engine.UnsupportedProductError):
        return DatabaseUnavailable(f"{node} is not {target.engine}: {_first_line(exc)}")
    if isinstance(exc, engine.ApiError):
        return DatabaseUnavailable(f"{node}: could not {doing} it: {_first_line(exc)}")
    return DatabaseUnavailable(f"{node}: could not {doing} it: {type(exc).__name__}: {exc}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
