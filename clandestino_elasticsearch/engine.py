"""What the search-engine store asks of a client, whichever engine's library it comes from.

The store (clandestino_elasticsearch.store) speaks the Elasticsearch 8/9 client's keyword API
(`index(index=, id=, document=)`, `search(query=)`, `indices.create(mappings=, settings=)`, ...)
to a `SearchClient`, and catches the errors below. A SearchClient wraps one library's async
client: the official Elasticsearch one as it is, opensearch-py's with the body parts its API
takes as `body=` moved there. Either way each library error becomes one of the errors below, so
one store serves both engines. Migrations get the library's own client (`SearchClient.raw`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationException",
    "AuthorizationException",
    "ConflictError",
    "ConnectionTimeout",
    "NotFoundError",
    "SearchClient",
    "SearchError",
    "TlsError",
    "TransportConnectionError",
    "TransportError",
    "UnsupportedProductError",
]


class SearchError(Exception):
    """An error of a search engine's client, whichever library raised it (its __cause__)."""


class TransportError(SearchError):
    """No answer: the request did not reach the node or its answer did not come back."""


class TransportConnectionError(TransportError):
    pass


class TlsError(TransportConnectionError):
    pass


class ConnectionTimeout(TransportError):
    pass


class ApiError(SearchError):
    """The node answered with an error; str() is the library's text (with the error's type)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class AuthenticationException(ApiError):
    pass


class AuthorizationException(ApiError):
    pass


class UnsupportedProductError(ApiError):
    """The server is not the engine the client was made for."""


Translate = Callable[[BaseException], SearchError | None]
Reshape = Callable[[str, dict[str, Any]], dict[str, Any]]


def _unchanged(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return arguments


class SearchClient:
    """A library's async client seen through the store's vocabulary: each coroutine method (and
    those of `indices`, `cluster`, `nodes`, `transport`) takes the Elasticsearch 8/9 keywords
    and raises the errors above."""

    def __init__(
        self,
        raw: Any,
        translate: Translate,
        reshape: Reshape = _unchanged,
        path: str = "",
    ) -> None:
        self.raw = raw
        self._translate = translate
        self._reshape = reshape
        self._path = path

    def translate(self, error: BaseException) -> SearchError | None:
        """The store's error for a library error (None for anything else)."""
        return error if isinstance(error, SearchError) else self._translate(error)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self.raw, name)
        path = f"{self._path}{name}"
        if not callable(target):
            return SearchClient(target, self._translate, self._reshape, f"{path}.")
        return self._wrapped(target, path)

    def _wrapped(self, call: Callable[..., Awaitable[Any]], path: str) -> Callable[..., Any]:
        @functools.wraps(call)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await call(*args, **self._reshape(path, kwargs))
            except SearchError:
                raise
            except Exception as exc:
                translated = self._translate(exc)
                if translated is None:
                    raise
                raise translated from exc

        return wrapped

    async def close(self) -> None:
        try:
            await self.raw.close()
        except Exception as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc
