"""A TCP proxy for the fault tests, run in a background thread of the test process.

It listens on 127.0.0.1 (a free port) and forwards each connection to a target, a TCP address
or a unix socket, so that `cdt` subprocesses reach the server through it. `cut()` closes every
current connection, both sides, at once (with a reset where the socket is TCP), as a network
that fails does; by default it then refuses new connections too, so a driver that reconnects
finds the server gone rather than carrying on. `resume()` lets them through again.

    with TcpProxy(("127.0.0.1", 27017)) as proxy:   # or TcpProxy("/run/pg/.s.PGSQL.5432")
        url = f"mongodb://127.0.0.1:{proxy.port}/db"
        ...
        proxy.cut()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["Target", "TcpProxy"]

T = TypeVar("T")

# A TCP address (host, port), or the path of a unix socket.
Target = tuple[str, int] | str | Path

_CHUNK = 64 * 1024
_CALL_TIMEOUT = 30.0
# SO_LINGER on, zero seconds: close() sends a reset instead of a polite FIN.
_RESET = struct.pack("ii", 1, 0)


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side, the server's side, the two pumps."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    aborted: bool = False

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        for pump in self.pumps:
            pump.cancel()
        _abort(self.client)
        _abort(self.server)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target` until closed; cut() drops every connection."""

    def __init__(self, target: Target, *, start_timeout: float = _CALL_TIMEOUT) -> None:
        self.target = target
        self._links: set[_Link] = set()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._thread.start()
        try:
            self.port = self._call(self._listen, timeout=start_timeout)
        except BaseException:
            self._stop_loop()
            raise
        self.host = "127.0.0.1"

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connections(self) -> int:
        """How many connections are being forwarded now."""
        return self._call(self._count)

    def cut(self, *, refuse: bool = True) -> None:
        """Close every current connection, both sides, abruptly; then, if `refuse`, reset every
        new one at once until resume(). Returns once they are all closed."""
        self._call(lambda: self._cut(refuse))

    def resume(self) -> None:
        """Forward new connections again after a cut(refuse=True)."""
        self._call(lambda: self._set_refusing(False))

    def close(self) -> None:
        """Drop every connection, stop listening and stop the thread. Safe to call twice."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            self._call(self._shut)
        self._stop_loop()

    # --- In the proxy's thread. ---

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _count(self) -> int:
        return len(self._links)

    async def _cut(self, refuse: bool) -> None:
        self._refusing = refuse
        links, self._links = self._links, set()
        for link in links:
            link.abort()
        # Let the transports actually close before cut() returns.
        await asyncio.sleep(0)

    async def _set_refusing(self, refusing: bool) -> None:
        self._refusing = refusing

    async def _shut(self) -> None:
        await self._cut(refuse=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            _abort(writer)
            return
        try:
            server_reader, server_writer = await self._connect()
        except OSError:
            _abort(writer)
            return
        if self._refusing:  # cut while we were connecting
            _abort(writer)
            _abort(server_writer)
            return
        link = _Link(writer, server_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(_pump(reader, server_writer)),
            asyncio.create_task(_pump(server_reader, writer)),
        ]
        try:
            await asyncio.gather(*link.pumps)
        except (asyncio.CancelledError, OSError):
            link.abort()
        finally:
            self._links.discard(link)
            for side in (writer, server_writer):
                side.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.target, tuple):
            host, port = self.target
            return await asyncio.open_connection(host, port)
        return await asyncio.open_unix_connection(str(self.target))

    # --- In the caller's thread. ---

    def _call(
        self, work: Callable[[], Coroutine[Any, Any, T]], timeout: float = _CALL_TIMEOUT
    ) -> T:
        return asyncio.run_coroutine_threadsafe(work(), self._loop).result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_CALL_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy one direction until its end, then pass the end on (a half close)."""
    while data := await source.read(_CHUNK):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof() and not sink.is_closing():
        sink.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once, unsent data dropped; a TCP peer gets a reset, as when a link fails."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    writer.transport.abort()
