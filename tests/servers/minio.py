"""A MinIO server for the tests: CLANDESTINO_TEST_MINIO_URL (with CLANDESTINO_TEST_MINIO_ACCESS_KEY
and CLANDESTINO_TEST_MINIO_SECRET_KEY), or the real MinIO server started here.

MinIO's tagged releases are not served as Go modules, so the server is built once from a pinned
pseudo-version on the Go module proxy (`go install`, a few minutes, a 150 MB binary) into a cache
outside the repository, ~/.cache/clandestino-tests/minio/<version>/minio (or
CLANDESTINO_TEST_CACHE); later sessions start it at once. It listens on a free loopback port,
keeps its data in a temporary folder and gets fresh credentials each session. The tests share one
server: the `clandestino` bucket is fixed, so each test empties it first (on a server of your own
too: point the tests only at a server whose `clandestino` bucket may be wiped).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MINIO_MODULE", "MINIO_VERSION", "MinioServer", "minio_binary", "minio_server"]

TEST_URL = "CLANDESTINO_TEST_MINIO_URL"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
BUILD_TIMEOUT = 1800.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class MinioServer:
    url: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The original's settings, pointing at this server."""
        return {
            "CLANDESTINO_BUCKET_CONNECTION_STRING": self.url,
            "CLANDESTINO_BUCKET_ACCESS_KEY": self.access_key,
            "CLANDESTINO_BUCKET_SECRET_KEY": self.secret_key,
        }


def minio_binary() -> Path:
    """The cached server binary, built from the Go module proxy the first time."""
    cache = Path(
        os.environ.get("CLANDESTINO_TEST_CACHE") or Path.home() / ".cache" / "clandestino-tests"
    )
    folder = cache / "minio" / MINIO_VERSION
    binary = folder / "minio"
    if binary.is_file():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(folder), "GOFLAGS": "-buildvcs=false"}
    log = folder / "build.log"
    with log.open("wb") as output:
        done = subprocess.run(
            [_go(), "install", f"{MINIO_MODULE}@{MINIO_VERSION}"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    if done.returncode != 0 or not binary.is_file():
        raise RuntimeError(f"building MinIO failed; see {log}:\n{log.read_text()[-3000:]}")
    return binary


def _go() -> str:
    """The Go toolchain: on PATH, or where Go's own installer puts it (/usr/local/go), which a
    clean login PATH does not name."""
    import shutil

    found = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if found is None:
        raise RuntimeError(
            "building the MinIO test server needs Go 1.24 or later: install it from go.dev or"
            f" point {TEST_URL} at a MinIO server of your own"
        )
    return found


@contextmanager
def minio_server(workdir: Path) -> Iterator[MinioServer]:
    given = os.environ.get(TEST_URL)
    if given:
        yield MinioServer(
            given.rstrip("/"),
            os.environ.get("CLANDESTINO_TEST_MINIO_ACCESS_KEY", ""),
            os.environ.get("CLANDESTINO_TEST_MINIO_SECRET_KEY", ""),
        )
        return
    binary = minio_binary()
    port, console = _free_port(), _free_port()
    server = MinioServer(
        f"http://127.0.0.1:{port}", f"test{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    )
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    command = [str(binary), "server", str(data), "--quiet", "--address", f"127.0.0.1:{port}",
               "--console-address", f"127.0.0.1:{console}"]  # fmt: skip
    log_path = workdir / "minio.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_live(server.url, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"MinIO exited ({process.returncode}):\n{log_path.read_text()}")
        with (
            suppress(OSError),
            urllib.request.urlopen(f"{url}/minio/health/live", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"MinIO did not start in {START_TIMEOUT:g} s:\n{log_path.read_text()}")
