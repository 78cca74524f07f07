"""Backends by name: the entry-point group `clandestino.backends`, and the choice of control store.

A backend package exposes a `Backend` object through the group; loading it must import no driver.
The driver is imported by `create_store`, so a missing extra is reported only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clandestino.config import MIGRATION_REPO, Settings
from clandestino.errors import BackendNotInstalled, ConfigurationError
from clandestino.store import ControlStore, Snapshot

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "chosen_backend",
    "installed_backends",
    "load_backend",
    "local_repository_path",
    "read_snapshot",
    "repository_mode",
    "resolve_store",
]

ENTRY_POINT_GROUP = "clandestino.backends"
DEFAULT_BACKEND = "sqlite"

# Shipped in this distribution and registered in the same entry-point group; looked up here first
# because scanning installed metadata costs about 50 ms, most of a no-op run's budget.
_BUILT_IN = {
    "sqlite": "clandestino_sqlite.backend:backend",
    "postgres": "clandestino_postgres.backend:backend",
    "mongo": "clandestino_mongo.backend:backend",
    "elasticsearch": "clandestino_elasticsearch.backend:backend",
    "minio": "clandestino_minio.backend:backend",
    "qdrant": "clandestino_qdrant.backend:backend",
    "opensearch": "clandestino_opensearch.backend:backend",
}
_EXTRAS = {
    "postgres": "postgres",
    "mongo": "mongo",
    "elasticsearch": "elasticsearch",
    "minio": "minio",
    "qdrant": "qdrant",
    "opensearch": "opensearch",
}


@dataclass(frozen=True)
class Backend:
    """A control-store backend as a plug-in declares it.

    create_store(settings, read_only) builds an unopened store; read_only stores must not create
    anything (used by `-lm` and `--dry-run`). url_setting names the setting that the `url`
    argument of the API overrides. template_module is the `-cm` template, found without import.

    read_snapshot(settings), where given, reads the applied records in one blocking call without
    the async driver, or returns None when it cannot (the store then does it): the CLI answers
    its most common run, nothing to do, with it before starting an event loop.

    fleet, where given, is the "module:attribute" of its fleet adapter
    (clandestino.fleet.adapter.FleetAdapter), imported only for fleet runs.
    """

    name: str
    url_setting: str
    template_module: str
    create_store: Callable[[Settings, bool], ControlStore]
    read_snapshot: Callable[[Settings], Snapshot | None] | None = None
    fleet: str | None = None


def _import_target(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def installed_backends() -> dict[str, str]:
    """Every backend name, lower-cased, with the `module:attribute` that provides it."""
    from importlib.metadata import entry_points

    found = {ep.name.lower(): ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **{n: t for n, t in _BUILT_IN.items() if _module_exists(t)}}


def _module_exists(target: str) -> bool:
    from importlib.util import find_spec

    return find_spec(target.partition(":")[0].partition(".")[0]) is not None


def load_backend(name: str, source: str = f"{MIGRATION_REPO}=") -> Backend:
    """The backend called `name` (case-insensitive), or a ConfigurationError saying what to do.

    `source` says where the name came from, for the message."""
    key = name.strip().lower()
    target = _BUILT_IN.get(key) if key in _BUILT_IN and _module_exists(_BUILT_IN[key]) else None
    if target is None:
        target = installed_backends().get(key)
    if target is None:
        if key in _EXTRAS:
            raise BackendNotInstalled(
                f"{source}{name} needs the {key} backend, which is not installed",
                f"pip install 'clandestino[{_EXTRAS[key]}]'",
            )
        known = ", ".join(sorted(installed_backends())).upper()
        raise ConfigurationError(
            f"{source}{name} names no installed backend",
            f"use one of {known}, or install the package that provides it",
        )
    try:
        backend = _import_target(target)
    except ImportError as exc:
        raise BackendNotInstalled(
            f"the {key} backend cannot be loaded: {exc}",
            f"pip install 'clandestino[{_EXTRAS.get(key, key)}]'",
        ) from exc
    if not isinstance(backend, Backend):
        raise ConfigurationError(f"entry point {key!r} ({target}) is not a clandestino Backend")
    return backend


def local_repository_path(settings: Settings) -> Path:
    return settings.migrations_dir / "repository.py"


def repository_mode(settings: Settings) -> str:
    """The mode line's value, from settings alone: no import, no connection."""
    local = local_repository_path(settings)
    if local.is_file():
        return f"LOCAL ({local})"
    if settings.repository:
        return settings.repository.upper()
    return f"{DEFAULT_BACKEND.upper()} (default)"


def read_snapshot(settings: Settings) -> Snapshot | None:
    """The configured backend's records read without an event loop, where it can (a user's own
    repository is async only)."""
    if local_repository_path(settings).is_file():
        return None
    backend = load_backend(chosen_backend(settings))
    return backend.read_snapshot(settings) if backend.read_snapshot is not None else None


def chosen_backend(settings: Settings) -> str:
    """The configured backend's name, or the SQLite default when nothing points elsewhere."""
    if settings.repository:
        return settings.repository
    from clandestino.default_guard import refuse_a_doubtful_default

    refuse_a_doubtful_default(settings)
    return DEFAULT_BACKEND


def resolve_store(settings: Settings, names: Sequence[str], read_only: bool) -> ControlStore:
    """The store for this run: `migrations/repository.py`, else the configured backend, else SQLite.

    `names` are the migration names on disk; only a user's repository needs them, since its
    interface can answer "is X applied?" but cannot list what is.
    """
    local = local_repository_path(settings)
    if local.is_file():
        return _local_repository_store(local, names)
    backend = load_backend(chosen_backend(settings))
    try:
        return backend.create_store(settings, read_only)
    except ImportError as exc:
        raise BackendNotInstalled(
            f"the {backend.name} backend needs a driver that is not installed: {exc}",
            f"pip install 'clandestino[{_EXTRAS.get(backend.name, backend.name)}]'",
        ) from exc


def _local_repository_store(path: Path, names: Sequence[str]) -> ControlStore:
    from clandestino.discovery import import_user_file
    from clandestino.errors import MigrationFileError
    from clandestino.legacy import RepositoryAdapter

    module = import_user_file(path, "_clandestino_local_repository")
    repository_class = getattr(module, "MigrateRepository", None)
    if repository_class is None:
        raise MigrationFileError(
            f"{path}: no MigrateRepository class",
            "define `class MigrateRepository(IMigrateRepository)` with the five methods",
        )
    try:
        repository = repository_class()
    except TypeError as exc:
        raise MigrationFileError(
            f"{path}: MigrateRepository cannot be created: {exc}",
            "implement all five IMigrateRepository methods",
        ) from exc
    return RepositoryAdapter(repository, names, str(path))
