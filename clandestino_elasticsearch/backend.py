"""The Elasticsearch backend as the entry point sees it. Imports no driver."""

from __future__ import annotations

from typing import Any

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.store import ControlStore

__all__ = ["ELASTICSEARCH_CONNECTION_STRING", "backend"]

ELASTICSEARCH_CONNECTION_STRING = "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING"


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    return create_store(settings, read_only)


def create_store(settings: Settings, read_only: bool, client: Any = None) -> ControlStore:
    """The store; `client`, when given, a fleet's client of the cluster, shared and kept open."""
    # The driver itself, so that a missing extra is reported here, as not installed.
    import elasticsearch  # noqa: F401

    from clandestino_elasticsearch.connect import ElasticsearchTarget
    from clandestino_elasticsearch.store import ElasticsearchStore

    if settings.control_table.startswith("_"):
        raise ConfigurationError(
            f"CLANDESTINO_CONTROL_TABLE={settings.control_table!r} cannot name an Elasticsearch"
            " index: index names may not start with _",
            "choose a name that starts with a letter",
        )
    target = ElasticsearchTarget.from_settings(settings)
    return ElasticsearchStore(target, settings.control_table, settings.lock_lease, client)


backend = Backend(
    name="elasticsearch",
    url_setting=ELASTICSEARCH_CONNECTION_STRING,
    template_module="clandestino_elasticsearch.ref",
    fleet="clandestino_elasticsearch.fleet:adapter",
    create_store=_create_store,
)
