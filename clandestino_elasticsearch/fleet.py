"""Elasticsearch targets: an index prefix. A prefix's control index is `<prefix>_<control>`
(its lock and markers beside it), and its migrations name their indices from `self.target`.

The query finds prefixes from their control indices, so a prefix is found once it has been
migrated; new prefixes come from a targets file or a callable.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from clandestino.config import Settings, check_identifier
from clandestino.errors import ConfigurationError
from clandestino.fleet.adapter import with_values
from clandestino.fleet.targets import Target
from clandestino_elasticsearch.backend import ELASTICSEARCH_CONNECTION_STRING

if TYPE_CHECKING:
    from clandestino.fleet.sources import FleetChoice
    from clandestino.store import ControlStore
    from clandestino_elasticsearch.fleet_state import ElasticsearchFleetState

__all__ = ["ElasticsearchFleet", "ElasticsearchServers", "adapter", "control_index"]

PREFIX = "elasticsearch-prefix"
CLUSTER = "elasticsearch-cluster"


def control_index(prefix: str, control: str) -> str:
    return f"{prefix}_{control}"


class ElasticsearchFleet:
    def target(self, settings: Settings, name: str, url: str | None) -> Target:
        if name != name.lower() or name.startswith(("_", "-", "+")):
            raise ConfigurationError(
                f"{name!r} cannot prefix an Elasticsearch index",
                "use lower-case letters, digits and _, not starting with _",
            )
        return Target(name, PREFIX, url)

    def settings_for(self, settings: Settings, target: Target) -> Settings:
        index = check_identifier(
            control_index(target.name, settings.control_table), "an Elasticsearch prefix's index"
        )
        changed = with_values(
            settings, **({ELASTICSEARCH_CONNECTION_STRING: target.url} if target.url else {})
        )
        return dataclasses.replace(changed, control_table=index)

    def single(self, settings: Settings) -> Target:
        """A run without a fleet works on the cluster as a whole, named scheme://host:port: no
        prefix (a migration that names indices from a prefix checks `self.target.kind`)."""
        from clandestino_elasticsearch.connect import ElasticsearchTarget

        where = ElasticsearchTarget.from_settings(settings)
        return Target(where.where, CLUSTER, where.node)

    def servers(self, settings: Settings, concurrency: int) -> ElasticsearchServers:
        return ElasticsearchServers(settings, concurrency)

    def state(self, settings: Settings, source: FleetChoice | None) -> ElasticsearchFleetState:
        """The fleet's outcomes, in a hidden index of the configured cluster."""
        from clandestino_elasticsearch.connect import ElasticsearchTarget
        from clandestino_elasticsearch.fleet_state import ElasticsearchFleetState

        return ElasticsearchFleetState(ElasticsearchTarget.from_settings(settings))

    async def find(self, settings: Settings, pattern: str) -> list[Target]:
        """Prefixes from the index pattern `pattern` (`tenant_*`): each prefix with a control
        index (`tenant_acme_<control>`), and each one that so far has only indices of its own
        (`tenant_acme_orders` gives `tenant_acme`), a `*` then standing for one name segment
        (no `_`), as the pattern matches the prefix, not the index."""
        from clandestino_elasticsearch.connect import ElasticsearchTarget, database_error

        suffix = "_" + settings.control_table.lower()
        where = ElasticsearchTarget.from_settings(settings)
        client = where.client()
        try:
            found = await client.indices.get(
                index=f"{pattern},{control_index(pattern, settings.control_table.lower())}",
                allow_no_indices=True,
                ignore_unavailable=True,
                expand_wildcards="open",
            )
        except Exception as exc:
            raise database_error(exc, where, "list the indices of") from exc
        finally:
            await client.close()
        known = {name.removesuffix(suffix) for name in found if name.endswith(suffix)}
        prefixes = set(known)
        segment = re.compile(
            "".join("[^_]+" if part == "*" else re.escape(part) for part in _split(pattern))
            + "(?=_|$)"
        )
        for name in found:
            # An index of a prefix known by its control index is that prefix's, whatever its
            # underscores.
            if any(name.startswith(f"{prefix}_") for prefix in known):
                continue
            match = segment.match(name)
            if match:
                prefixes.add(match.group(0))
        return [Target(prefix, PREFIX) for prefix in sorted(prefixes)]


def _split(pattern: str) -> list[str]:
    """The pattern's literal parts and its `*`s, in order."""
    return [part for part in re.split(r"(\*)", pattern) if part]


class ElasticsearchServers:
    """One client per cluster for a fleet run, its connection pool at most `concurrency` per
    node: every prefix on the configured cluster shares its client."""

    def __init__(self, settings: Settings, concurrency: int) -> None:
        from clandestino.fleet.clients import SharedClients

        self._settings = settings
        self._concurrency = concurrency
        self._by_url: dict[str, Settings] = {}
        self.clients: SharedClients[Any] = SharedClients(self._client, _close)

    def _client(self, url: str) -> Any:
        from clandestino_elasticsearch.connect import ElasticsearchTarget

        where = ElasticsearchTarget.from_settings(self._by_url[url])
        return where.client(connections_per_node=self._concurrency)

    def create_store(self, settings: Settings, target: Target, read_only: bool) -> ControlStore:
        from clandestino_elasticsearch.backend import create_store

        url = settings.require(ELASTICSEARCH_CONNECTION_STRING, "")
        self._by_url.setdefault(url, settings)
        store: Any = create_store(settings, read_only, client=self.clients.client(url))
        return store  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.clients.aclose()


async def _close(client: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        await client.close()


adapter = ElasticsearchFleet()
