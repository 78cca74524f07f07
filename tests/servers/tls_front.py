"""A TLS and password front for a test server, as many deployments put one before Elasticsearch:
an HTTPS reverse proxy with basic auth, run in a background thread of the test process. The
node behind it stays the real one; only the door in front of it is added.

Built from libraries rather than a system package, so a newcomer's `make test` needs no nginx:
trustme makes the certificate authority and the server's certificate, aiohttp serves HTTPS and
forwards each request to the node once its basic-auth header is the expected one."""

from __future__ import annotations

import asyncio
import base64
import hmac
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web

__all__ = ["TlsFront", "tls_front"]

START_TIMEOUT = 30.0
# Headers that describe one hop, not the message: never passed on (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class TlsFront:
    url: str  # https://127.0.0.1:PORT, no credentials
    ca_file: Path  # the certificate authority that signed the front's certificate, to trust it
    user: str
    password: str


@contextmanager
def tls_front(workdir: Path, upstream: str, user: str, password: str) -> Iterator[TlsFront]:
    """Serve https://127.0.0.1:PORT in front of `upstream`, for `user` with `password` only."""
    workdir.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    ca_file = workdir / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tls-front", daemon=True)
    thread.start()
    front = _Front(upstream.rstrip("/"), user, password)
    try:
        port = asyncio.run_coroutine_threadsafe(front.start(context), loop).result(START_TIMEOUT)
        yield TlsFront(f"https://127.0.0.1:{port}", ca_file, user, password)
    finally:
        asyncio.run_coroutine_threadsafe(front.stop(), loop).result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        loop.close()


class _Front:
    """The proxy itself, living in the front's thread and event loop."""

    def __init__(self, upstream: str, user: str, password: str) -> None:
        self.upstream = upstream
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.authorization = f"Basic {token}"
        self.runner: web.AppRunner | None = None
        self.client: aiohttp.ClientSession | None = None

    async def start(self, context: ssl.SSLContext) -> int:
        self.client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server  # aiohttp does not expose the port it bound otherwise
        assert isinstance(server, asyncio.Server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.client is not None:
            await self.client.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request.headers.get("Authorization", "")):
            return web.Response(
                status=401,
                text="401 Authorization Required",
                headers={"WWW-Authenticate": 'Basic realm="clandestino test"'},
            )
        assert self.client is not None
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "authorization"
        }
        async with self.client.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() not in HOP_BY_HOP
            }
            return web.Response(status=answer.status, body=body, headers=kept)

    def _authorized(self, header: str) -> bool:
        return hmac.compare_digest(header.encode(), self.authorization.encode())
