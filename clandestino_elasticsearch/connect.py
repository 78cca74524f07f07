"""The Elasticsearch client from settings, and driver errors as Clandestino's one-line errors.

Certificates are verified unless CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS says otherwise. Messages
name the node as scheme://host:port and never carry a password or an API key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from clandestino.config import Settings, parse_flag
from clandestino.errors import ClandestinoError, ConfigurationError, DatabaseUnavailable
from clandestino.secret import ConnectionString, Secret

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

__all__ = ["ElasticsearchTarget", "database_error"]

URL = "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING"
USER = "CLANDESTINO_ELASTICSEARCH_USER"
PASSWORD = "CLANDESTINO_ELASTICSEARCH_PASSWORD"
API_KEY = "CLANDESTINO_ELASTICSEARCH_API_KEY"
VERIFY_CERTS = "CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS"
CA_CERTS = "CLANDESTINO_ELASTICSEARCH_CA_CERTS"
_URL_HINT = "use http(s)://host:9200, with user:password@ in it or in their own settings"


@dataclass(frozen=True)
class ElasticsearchTarget:
    node: str
    timeout: float
    where: str
    options: dict[str, Any] = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ElasticsearchTarget:
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

    def client(self, **extra: Any) -> AsyncElasticsearch:
        """A client of the cluster; `extra` are the client's own options (a fleet's
        connections_per_node)."""
        from elasticsearch import AsyncElasticsearch

        # The secrets are revealed only here, into the client.
        options = {name: _revealed(value) for name, value in self.options.items()}
        try:
            return AsyncElasticsearch(
                self.node, request_timeout=self.timeout, max_retries=0, **options, **extra
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{URL} is not usable: {exc}", _URL_HINT) from exc


def _revealed(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple):
        return tuple(_revealed(item) for item in value)
    return value


def database_error(exc: BaseException, target: ElasticsearchTarget, doing: str) -> ClandestinoError:
    """One clear line for what the client raised while we tried to `doing` the node."""
    from elastic_transport import ConnectionError, ConnectionTimeout, TlsError
    from elasticsearch import (
        ApiError,
        AuthenticationException,
        AuthorizationException,
        UnsupportedProductError,
    )

    node = f"Elasticsearch at {target.where}"
    if isinstance(exc, TlsError):
        return DatabaseUnavailable(
            f"{node}: the TLS certificate was not accepted: {_first_line(exc)}",
            f"give its CA in {CA_CERTS}, or turn checking off with {VERIFY_CERTS}=false",
        )
    if isinstance(exc, AuthenticationException):
        return DatabaseUnavailable(
            f"{node} refused the credentials",
            f"check the user and password in {URL} or {USER}/{PASSWORD}, or {API_KEY}",
        )
    if isinstance(exc, AuthorizationException):
        return DatabaseUnavailable(
            f"{node}: permission denied to {doing} the control index: {_first_line(exc)}",
            "grant the user the index privileges on the control index",
        )
    if isinstance(exc, ConnectionTimeout):
        return DatabaseUnavailable(
            f"{node} did not answer within {target.timeout:g} s",
            "check that the node is up, or raise CLANDESTINO_CONNECT_TIMEOUT",
        )
    if isinstance(exc, ConnectionError):
        return DatabaseUnavailable(
            f"cannot {doing} {node}: {_first_line(exc)}", "check that the node is up and reachable"
        )
    if isinstance(exc, UnsupportedProductError):
        return DatabaseUnavailable(f"{node} is not Elasticsearch: {_first_line(exc)}")
    if isinstance(exc, ApiError):
        return DatabaseUnavailable(f"{node}: could not {doing} it: {_first_line(exc)}")
    return DatabaseUnavailable(f"{node}: could not {doing} it: {type(exc).__name__}: {exc}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
