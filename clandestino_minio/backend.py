"""The MinIO backend as the `clandestino.backends` entry point sees it. Imports no driver."""

from __future__ import annotations

from clandestino.backends import Backend
from clandestino.config import Settings
from clandestino.store import ControlStore

__all__ = [
    "BUCKET_ACCESS_KEY",
    "BUCKET_CONNECTION_STRING",
    "BUCKET_SECRET_KEY",
    "backend",
]

BUCKET_CONNECTION_STRING = "CLANDESTINO_BUCKET_CONNECTION_STRING"
BUCKET_ACCESS_KEY = "CLANDESTINO_BUCKET_ACCESS_KEY"
BUCKET_SECRET_KEY = "CLANDESTINO_BUCKET_SECRET_KEY"


def _create_store(settings: Settings, read_only: bool) -> ControlStore:
    from clandestino_minio.connect import MinioTarget
    from clandestino_minio.store import MinioStore

    return MinioStore(MinioTarget.from_settings(settings), settings.lock_lease)


backend = Backend(
    name="minio",
    url_setting=BUCKET_CONNECTION_STRING,
    template_module="clandestino_minio.ref",
    create_store=_create_store,
)
