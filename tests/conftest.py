"""Fixtures shared by every test: a project folder, a real `cdt` subprocess, backend harnesses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import suppress
from pathlib import Path

import pytest

from tests.harness import BACKENDS, BackendHarness

CDT = str(Path(sys.executable).with_name("cdt"))

# Started as a background job of a non-interactive shell (`make test &`, some CI runners), the
# tests inherit SIGINT ignored, and so would every `cdt` they start: Ctrl-C tests would then wait
# for a signal that never arrives. A Python handler here is reset to the default in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Project:
    """A working directory with a migrations folder, and a way to run `cdt` in it."""

    def __init__(self, root: Path, harness: BackendHarness) -> None:
        self.root = root
        self.migrations = root / "migrations"
        self.migrations.mkdir()
        self.harness = harness
        self.env: dict[str, str] = {**clean_environ(), **harness.env()}
        self._counter = 0

    def add(self, source: str, name: str | None = None) -> Path:
        """Write a migration file; names sort in the order they are added."""
        self._counter += 1
        stem = f"migration_2024_01_01_00_00_{self._counter:02d}_{name or f'step{self._counter}'}"
        path = self.migrations / f"{stem}.py"
        path.write_text(source, encoding="utf-8")
        return path

    def add_effect(self, tag: str, **options: object) -> Path:
        return self.add(self.harness.effect_migration(tag, **options), tag)

    def cdt(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: int | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CDT, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CDT, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


_DURATION = re.compile(r" \d+\.\d\d s$")


def step_lines(output: str) -> list[str]:
    """The `-> ...` lines of a run, each as the original printed it (without how long it took)."""
    return [_DURATION.sub("", line) for line in output.splitlines() if line.startswith("-> ")]


def skip_outside_ci(reason: str) -> None:
    """Skip on a user's own server that lacks something; in CI, where the servers are ours, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"CI's own server should support this: {reason}")
    pytest.skip(reason)


def clean_environ() -> dict[str, str]:
    """The test process's environment without any Clandestino setting a developer may have."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLANDESTINO_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerFolders:
    """Where this session's test servers keep their files: a folder of its own, made by this
    session and removed by it alone at its end. Not inside pytest's numbered temporary folders,
    which pytest deletes once newer sessions exist, even while another session still runs its
    servers there (two test runs at once, or a run and the benchmark)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"clandestino-servers-{os.getpid()}-"))

    def make(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir()
        return folder

    def remove(self, keep_logs_in: Path) -> None:
        """Delete the folder, first copying the servers' logs where pytest keeps a failure's."""
        for log in self.root.rglob("*.log"):
            if log.is_file():
                copy = keep_logs_in / log.relative_to(self.root)
                copy.parent.mkdir(parents=True, exist_ok=True)
                with suppress(OSError):
                    shutil.copy(log, copy)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def server_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFolders]:
    folders = ServerFolders()
    yield folders
    folders.remove(tmp_path_factory.getbasetemp() / "server-logs")


@pytest.fixture(scope="session")
def postgres_url(server_folders: ServerFolders) -> Iterator[str]:
    """An admin URL of the session's PostgreSQL server (started here unless the env names one)."""
    from tests.servers.postgres import postgres_server

    with postgres_server(server_folders.make("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def elasticsearch_url(server_folders: ServerFolders) -> Iterator[str]:
    """The URL of the session's Elasticsearch node (started here unless the env names one)."""
    from tests.servers.elasticsearch import elasticsearch_server

    with elasticsearch_server(server_folders.make("elasticsearch")) as url:
        yield url


@pytest.fixture(scope="session")
def opensearch_url(server_folders: ServerFolders) -> Iterator[str]:
    """The URL of the session's OpenSearch node (started here unless the env names one)."""
    from tests.servers.opensearch import opensearch_server

    with opensearch_server(server_folders.make("opensearch")) as url:
        yield url


@pytest.fixture(scope="session")
def mongo_url(server_folders: ServerFolders) -> Iterator[str]:
    """The URL (no database) of the session's MongoDB-protocol server."""
    from tests.servers.mongo import mongo_server

    with mongo_server(server_folders.make("mongo")) as url:
        yield url


@pytest.fixture(scope="session")
def minio_url(server_folders: ServerFolders) -> Iterator[str]:
    """The session's MinIO server as http://ACCESS_KEY:SECRET_KEY@host:port (keys as user-info)."""
    from tests.servers.minio import minio_server

    with minio_server(server_folders.make("minio")) as server:
        scheme, _, address = server.url.partition("://")
        yield f"{scheme}://{server.access_key}:{server.secret_key}@{address}"


def _started(request: pytest.FixtureRequest, tmp_path: Path) -> BackendHarness:
    harness_class: type[BackendHarness] = request.param
    server = harness_class.server_fixture
    url = request.getfixturevalue(server) if server else None
    return harness_class(tmp_path / "backend", url)


@pytest.fixture(params=BACKENDS, ids=lambda harness_class: harness_class.name)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendHarness]:
    instance = _started(request, tmp_path)
    yield instance
    instance.cleanup()


def _project_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    instance = _started(request, tmp_path)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, instance)
    instance.cleanup()


@pytest.fixture(
    params=[backend for backend in BACKENDS if backend.leaves_markers and backend.locks],
    ids=lambda harness_class: harness_class.name,
)
def lease_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on each backend whose lock is a lease document (no session-bound lock)."""
    yield from _project_on(request, tmp_path)


@pytest.fixture(
    params=[backend for backend in BACKENDS if backend.locks],
    ids=lambda harness_class: harness_class.name,
)
def locking_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on each backend with a lock between deployers (all but Qdrant's, which has
    none and says so on every run)."""
    yield from _project_on(request, tmp_path)


@pytest.fixture(
    params=[backend for backend in BACKENDS if backend.marks_untransacted_steps],
    ids=lambda harness_class: harness_class.name,
)
def marking_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on each backend where a step that runs outside a transaction leaves an
    in-progress marker (every backend but SQLite, whose steps all commit with their record)."""
    yield from _project_on(request, tmp_path)


@pytest.fixture(
    params=[backend for backend in BACKENDS if backend.server_fixture],
    ids=lambda harness_class: harness_class.name,
)
def server_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on each backend reached over a connection (all but SQLite), for the tests of
    what a lost connection does."""
    yield from _project_on(request, tmp_path)


@pytest.fixture(
    params=[backend for backend in BACKENDS if backend.reads_without_loop],
    ids=lambda harness_class: harness_class.name,
)
def snapshot_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on each backend whose no-op run reads its records without an event loop."""
    yield from _project_on(request, tmp_path)


@pytest.fixture
def project(tmp_path: Path, harness: BackendHarness) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root, harness)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Iterator[Project]:
    """A project on the SQLite default, for tests of the CLI and core that need no server."""
    from tests.harness import SqliteHarness

    harness = SqliteHarness(tmp_path / "backend")
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()
