"""A MongoDB server for the tests: CLANDESTINO_TEST_MONGO_URL, or a SecantusDB server (PyPI
`SecantusDB`, a MongoDB wire-protocol server over WiredTiger) started here in a process of its own,
so that `cdt` subprocesses can connect to it as well as the test process.

SecantusDB's Python server runs on threads inside whatever process builds it; this module runs it
in a child Python process (this same file, run as a script) that prints `URL mongodb://...` when
it is listening and stops the server cleanly when its stdin closes (so it also stops if the test
process dies). It advertises itself as the primary of a one-node replica set named `secantus`, so
pymongo allows transactions on it. Per session, in a conftest:

    @pytest.fixture(scope="session")
    def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with mongo_server(tmp_path_factory.mktemp("mongo")) as url:
            yield url  # tests connect to f"{url}/{database}"
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["REPLICA_SET", "TEST_URL", "mongo_server"]

TEST_URL = "CLANDESTINO_TEST_MONGO_URL"
REPLICA_SET = "secantus"  # the set name the server advertises in `hello`
START_TIMEOUT = 60.0  # it is listening in well under a second
STOP_TIMEOUT = 30.0


@contextmanager
def mongo_server(workdir: Path, *, root_user: tuple[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL (mongodb://127.0.0.1:PORT, no database, no credentials) of a server.

    Its files go under workdir/mongo; one server per workdir (WiredTiger locks its directory).
    With root_user=(name, password) the server has that user (role root, in the admin database)
    and refuses every other command until a client authenticates: connect with
    f"mongodb://{name}:{password}@127.0.0.1:PORT/{database}?authSource=admin".
    """
    # Imported here: this file also runs as the server's own script, outside the tests' path.
    from tests.servers.launch import read_url, stop

    given = os.environ.get(TEST_URL)
    if given:
        yield given.rstrip("/")
        return
    server_dir = workdir / "mongo"
    data_dir = server_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = server_dir / "server.log"
    # -P: do not put tests/servers on sys.path, where a module could shadow a package's name.
    command = [sys.executable, "-P", str(Path(__file__).resolve()), str(data_dir)]
    env = dict(os.environ)
    if root_user is not None:
        env["SECANTUS_ROOT_USER"], env["SECANTUS_ROOT_PASSWORD"] = root_user
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=server_dir,
            env=env,
        )
    try:
        yield read_url(process, log_path, time.monotonic() + START_TIMEOUT, "SecantusDB")
    finally:
        stop(process, STOP_TIMEOUT)


# --- The launcher: this file run as a script, in the server's own process. ---


def _serve(data_dir: str) -> int:
    """Serve until stdin closes (or SIGTERM / SIGINT), then close the server cleanly."""
    import logging
    import signal

    from secantus import SecantusDBServer  # type: ignore[import-untyped]

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=data_dir)
    server.start()
    host, port = server.address
    try:
        user = os.environ.get("SECANTUS_ROOT_USER")
        if user:
            _create_root_user(server.uri, user, os.environ.get("SECANTUS_ROOT_PASSWORD", ""))
            # Read per command, so it takes effect at once; no client knows the port yet.
            server.require_auth = True
        sys.stdout.write(f"URL mongodb://{host}:{port}\n")
        sys.stdout.flush()
        sys.stdin.buffer.read()  # until the test process closes our stdin, or dies
    finally:
        _stop_server(server, port)
    return 0


def _create_root_user(uri: str, user: str, password: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(uri, directConnection=True)
    try:
        client.admin.command("createUser", user, pwd=password, roles=["root"])
    finally:
        client.close()


def _stop_server(server: Any, port: int) -> None:
    """server.stop(), with its accept thread woken by connecting to it.

    Closing a listening socket does not wake a thread blocked in accept() on Linux, so stop()
    would otherwise wait out its 2 s join timeout on the accept thread every time.
    """
    import socket
    import threading

    done = threading.Event()

    def poke() -> None:
        while not done.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return  # refused: the accept loop is gone
            done.wait(0.02)

    poker = threading.Thread(target=poke, name="secantus-stop-poke", daemon=True)
    poker.start()
    try:
        server.stop()
    finally:
        done.set()
        poker.join(timeout=1.0)


if __name__ == "__main__":
    raise SystemExit(_serve(sys.argv[1]))
