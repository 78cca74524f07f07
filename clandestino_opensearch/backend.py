"""The OpenSearch backend as the entry point sees it. Imports no driver."""

from __future__ import annotations

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.errors import ConfigurationError
from clandestino.store import ControlStore

__all__ = ["OPENSEARCH_CONNECTION_STRING", "backend"]

OPENSEARCH_CONNECTION_STRING = "CLANDESTINO_OPENSEARCH_CONNECTION_STRING"


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    # The driver itself, so that a missing extra is reported here, as not installed.
    import opensearchpy  # noqa: F401

    from clandestino_elasticsearch.store import SearchStore
    from clandestino_opensearch.connect import OpenSearchTarget

    if settings.control_table.startswith("_"):
        raise ConfigurationError(
            f"CLANDESTINO_CONTROL_TABLE={settings.control_table!r} cannot name an OpenSearch"
            " index: index names may not start with _",
            "choose a name that starts with a letter",
        )
    target = OpenSearchTarget.from_settings(settings)
    return SearchStore(target, settings.control_table, settings.lock_lease)


backend = Backend(
    name="opensearch",
    url_setting=OPENSEARCH_CONNECTION_STRING,
    template_module="clandestino_opensearch.ref",
    create_store=_create_store,
)
