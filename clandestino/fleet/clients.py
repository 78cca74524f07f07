"""One client per server, shared by every target of a fleet run on that server: for stores
whose client is a pool of its own (MongoDB's, Elasticsearch's), so K targets at once share its
connections instead of each opening and closing a client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SharedClients"]

C = TypeVar("C")


class SharedClients(Generic[C]):
    """Clients by server key, made on first use and closed together by `aclose()`."""

    def __init__(self, make: Callable[[str], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._clients: dict[str, C] = {}

    def client(self, key: str) -> C:
        # No await between the look-up and the insert: the event loop cannot make two.
        if key not in self._clients:
            self._clients[key] = self._make(key)
        return self._clients[key]

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await self._close(client)
