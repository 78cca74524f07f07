"""A TLS and password front for a test server, as many deployments put one before Elasticsearch:
nginx from Debian's package, a self-signed certificate made with openssl, basic auth. The node
behind it stays the real one; only the door in front of it is added."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsFront", "tls_front"]

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class TlsFront:
    url: str  # https://127.0.0.1:PORT, no credentials
    ca_file: Path  # the self-signed certificate, to trust it
    user: str
    password: str


@contextmanager
def tls_front(workdir: Path, upstream: str, user: str, password: str) -> Iterator[TlsFront]:
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    hashed = _run("openssl", "passwd", "-apr1", password).strip()
    (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
    port = _free_port()
    config = workdir / "nginx.conf"
    config.write_text(_config(workdir, port, upstream))
    process = subprocess.Popen(
        ["nginx", "-c", str(config), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, process, workdir / "error.log")
        yield TlsFront(f"https://127.0.0.1:{port}", cert, user, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _config(workdir: Path, port: int, upstream: str) -> str:
    temp = "\n".join(
        f"  {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers would drop to nobody, who cannot read the password file in workdir.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
{temp}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {workdir / "cert.pem"};
    ssl_certificate_key {workdir / "key.pem"};
    auth_basic "clandestino test";
    auth_basic_user_file {workdir / "htpasswd"};
    location / {{
      proxy_pass {upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = process.stderr.read() if process.stderr else ""
            logged = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx exited ({process.returncode}): {errors}{logged}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within {START_TIMEOUT:g} s")
