"""The Qdrant backend as the `clandestino.backends` entry point sees it. Imports no driver."""

from __future__ import annotations

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.store import ControlStore

__all__ = ["QDRANT_API_KEY", "QDRANT_CONNECTION_STRING", "backend"]

QDRANT_CONNECTION_STRING = "CLANDESTINO_QDRANT_CONNECTION_STRING"
QDRANT_API_KEY = "CLANDESTINO_QDRANT_API_KEY"


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    from clandestino_qdrant.connect import QdrantTarget
    from clandestino_qdrant.store import QdrantStore

    return QdrantStore(QdrantTarget.from_settings(settings))


backend = Backend(
    name="qdrant",
    url_setting=QDRANT_CONNECTION_STRING,
    template_module="clandestino_qdrant.ref",
    create_store=_create_store,
)
