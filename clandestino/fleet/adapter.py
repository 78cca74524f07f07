"""What a backend offers a fleet: the kind of its targets, the settings that point a store at
one, and a query that finds them. A backend names its adapter in `Backend.fleet`
("module:attribute"), imported only for fleet runs."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Protocol

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.fleet.targets import Target

__all__ = ["FleetAdapter", "adapter_for", "with_values"]


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
