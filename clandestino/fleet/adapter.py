"""What a backend offers a fleet: the kind of its targets, the settings that point a store at
one, and a query that finds them. A backend names its adapter in `Backend.fleet`
("module:attribute"), imported only for fleet runs."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Protocol

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.fleet.targets import Target

if TYPE_CHECKING:
    from clandestino.fleet.servers import SharedServers

__all__ = ["FleetAdapter", "adapter_for", "servers_for", "single_target", "with_values"]


class FleetAdapter(Protocol):
    def target(self, settings: Settings, name: str, url: str | None) -> Target:
        """The target called `name`, in its own `url` or else in the store the settings name."""
        ...

    def settings_for(self, settings: Settings, target: Target) -> Settings:
        """The settings with which the backend's store opens `target`'s records and lock."""
        ...

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """The targets the store holds that match `pattern`, sorted by name."""
        ...

    def single(self, settings: Settings) -> Target:
        """The one target a run without a fleet works on: the store the settings name."""
        ...

    # Optional: `servers(settings, concurrency) -> SharedServers`, the connections a fleet run
    # shares between its targets (see clandestino.fleet.servers); without it each target's
    # store opens its own.


def adapter_for(backend: Backend) -> FleetAdapter:
    if backend.fleet is None:
        raise ConfigurationError(
            f"the {backend.name} backend does not run fleets",
            "use postgres, mongo, elasticsearch or sqlite for a fleet",
        )
    module_name, _, attribute = backend.fleet.partition(":")
    adapter: FleetAdapter = getattr(importlib.import_module(module_name), attribute)
    return adapter


def with_values(settings: Settings, **changes: str) -> Settings:
    """`settings` with some raw values replaced, without reading `.env` again per target."""
    return dataclasses.replace(settings, values={**settings.values, **changes})


def servers_for(
    adapter: FleetAdapter, backend: Backend, settings: Settings, concurrency: int
) -> SharedServers:
    from clandestino.fleet.servers import OwnConnections

    shared = getattr(adapter, "servers", None)
    if shared is None:
        return OwnConnections(backend)
    servers: SharedServers = shared(settings, concurrency)
    return servers


def single_target(settings: Settings, backend: Backend | None) -> Target:
    """What a run without a fleet shows its migrations as `self.target`: the place the settings
    name, as a target of the backend's own kind (a backend with no fleet adapter, or a local
    repository, is a target of kind "repository" named after it)."""
    if backend is None or backend.fleet is None:
        name = backend.name if backend is not None else "repository"
        return Target(name, "repository")
    return adapter_for(backend).single(settings)
