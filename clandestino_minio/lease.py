"""The MinIO lock: a lease object claimed with `If-None-Match: *`, renewed, taken over and
released with `If-Match` on the ETag last seen (see clandestino.lease).

A lease's expiry is judged on the server's clock: the holder writes its lease length into the
object, and a reader compares it with the object's age, the server's Date less its Last-Modified
(to the second, so a second is added). Deployers' clocks need not agree. Each renewal writes a
fresh nonce, so every version has an ETag of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clandestino.lease import Lease, LockLost
from clandestino.store import utc_from_text
from clandestino_minio.objects import Changed, create_bucket, read, write

if TYPE_CHECKING:
    from miniopy_async.api import Minio

__all__ = ["LOCK_KEY", "MinioLease", "taken_over"]

LOCK_KEY = ".clandestino/lock.json"


def _body(
    owner: str, token: str, since: datetime | None, lease: float, released: bool = False
) -> bytes:
    document = {
        "owner": owner,
        "lease_seconds": lease,
        "token": token,
        "since": (since or datetime.now(UTC)).isoformat(),
        "released": released,
        "nonce": uuid.uuid4().hex,
    }
    return json.dumps(document).encode()


def _lease(body: bytes, etag: str, age: float | None = None) -> Lease:
    document: dict[str, Any] = json.loads(body)
    lease = document.get("lease_seconds")
    expired = None
    if age is not None and isinstance(lease, int | float):
        expired = age >= lease + 1
    return Lease(
        str(document.get("owner")),
        str(document.get("token")),
        utc_from_text(document.get("since")),
        version=etag,
        expired=expired,
        released=bool(document.get("released")),
    )


def taken_over() -> LockLost:
    return LockLost(
        "lost the migration lock: another deployer took it over, so nothing more is recorded",
        "this run stalled longer than the lease (CLANDESTINO_LOCK_LEASE); check what the"
        " interrupted migration did",
    )


class MinioLease:
    def __init__(
        self,
        client: Minio,
        fence: Callable[[str], Awaitable[None]],
        renewal_client: Callable[[], Minio],
        lease_seconds: float,
    ) -> None:
        self._lease_seconds = lease_seconds
        self._client = client
        self._fence = fence
        self._renewal_client = renewal_client
        self._mine: Lease | None = None

    async def create(self, owner: str, token: str) -> Lease | None:
        body = _body(owner, token, None, self._lease_seconds)
        try:
            etag = await write(self._client, LOCK_KEY, body, absent=True)
        except Changed:
            return None
        except Exception as exc:
            if getattr(exc, "code", None) != "NoSuchBucket":
                raise
            await create_bucket(self._client)
            return await self.create(owner, token)
        self._mine = _lease(body, etag)
        return self._mine

    async def read(self) -> Lease | None:
        found = await read(self._client, LOCK_KEY)
        return _lease(found.body, found.etag, found.age) if found else None

    async def take_over(self, current: Lease, owner: str, token: str) -> Lease | None:
        body = _body(owner, token, None, self._lease_seconds)
        try:
            etag = await write(self._client, LOCK_KEY, body, if_match=current.version)
        except Changed:
            return None
        self._mine = _lease(body, etag)
        return self._mine

    async def fence(self, mine: Lease) -> None:
        await self._fence(mine.token)

    async def check(self) -> None:
        current = await self.read()
        if self._mine is None or current is None or current.token != self._mine.token:
            raise taken_over()

    async def release(self, mine: Lease) -> None:
        # Kept, not deleted: a released lease is free to take at once, by an If-Match.
        body = _body(mine.owner, mine.token, mine.since, self._lease_seconds, released=True)
        await write(self._client, LOCK_KEY, body, if_match=mine.version)

    @asynccontextmanager
    async def renewer(self) -> AsyncIterator[_MinioRenewer]:
        client = self._renewal_client()
        try:
            yield _MinioRenewer(client, self._lease_seconds)
        finally:
            await client.close_session()  # type: ignore[no-untyped-call]


class _MinioRenewer:
    def __init__(self, client: Minio, lease_seconds: float) -> None:
        self._client = client
        self._lease_seconds = lease_seconds

    async def renew(self, mine: Lease) -> Lease | None:
        body = _body(mine.owner, mine.token, mine.since, self._lease_seconds)
        try:
            etag = await write(self._client, LOCK_KEY, body, if_match=mine.version)
        except Changed:
            return None
        return _lease(body, etag)
