"""Shared by the test servers that run as a child process printing `URL ...` when ready and
stopping when their standard input closes (the Elasticsearch node, the SecantusDB server)."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from contextlib import suppress
from pathlib import Path

__all__ = ["read_url", "stop", "tail"]

LOG_TAIL = 40


def read_url(process: subprocess.Popen[bytes], log_path: Path, deadline: float, name: str) -> str:
    """Wait, until the deadline, for the child's `URL ...` line; fail with its log's last lines."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"{name} did not start in time; last lines of {log_path}:\n{tail(log_path)}"
                )
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
                raise RuntimeError(
                    f"{name} exited before it was ready (exit code {process.poll()}); "
                    f"last lines of {log_path}:\n{tail(log_path)}"
                )
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"URL "):
                    return line.removeprefix(b"URL ").decode().strip()


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Close the child's stdin, which stops its server; kill it if it lingers."""
    if process.stdin is not None:
        with suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        if process.stdout is not None:
            process.stdout.close()


def tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(lines[-LOG_TAIL:])
