"""The connections a fleet run shares between its targets: one pool or client per server.

A backend's fleet adapter may offer `servers(settings, concurrency)`: an object whose
`create_store` builds a target's store on the run's shared connections, and whose `aclose`
closes them once the fleet is done. A backend that offers none gets `OwnConnections`: each
target's store opens and closes its own (SQLite files need nothing more).
"""

from __future__ import annotations

from typing import Protocol

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.fleet.targets import Target
from clandestino.store import ControlStore

__all__ = ["OwnConnections", "SharedServers"]


class SharedServers(Protocol):
    def create_store(self, settings: Settings, target: Target, read_only: bool) -> ControlStore:
        """`target`'s store (with `settings`, the adapter's settings for it), not opened yet."""
        ...

    async def aclose(self) -> None: ...


class OwnConnections:
    """Each target's store opens its own connection and closes it when the target is done."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def create_store(self, settings: Settings, target: Target, read_only: bool) -> ControlStore:
        return self._backend.create_store(settings, read_only)

    async def aclose(self) -> None:
        return None
