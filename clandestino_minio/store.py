"""The control records in a MinIO bucket (`clandestino`, as in the original).

Records are one JSON index object (see records.py), read with one listing of the bucket's root
(the original's objects) in `applied()`. The lock is a lease object (see lease.py). Fencing: the
holder first stamps its token into the index; each record and marker write is then a whole new
index written with `If-Match` on the ETag this run last wrote, so a deployer whose lease was
taken over (the new holder stamped the index) writes nothing and stops with LockLost. There are
no transactions: before each step a marker goes into the index, so a run that dies between a
step and its record is seen by the next one.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from clandestino.errors import ClandestinoError
from clandestino.lease import lease_lock
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, WaitCallback
from clandestino_minio.connect import MinioTarget, database_error
from clandestino_minio.infra import MinioInfra
from clandestino_minio.lease import MinioLease, taken_over
from clandestino_minio.objects import BUCKET, Changed, create_bucket, list_root, read, write
from clandestino_minio.records import INDEX_KEY, RecordIndex

if TYPE_CHECKING:
    from miniopy_async.api import Minio

__all__ = ["MinioStore"]

T = TypeVar("T")
Originals = dict[str, datetime | None]
# How often a write without the lock (repair of a user's own choosing) retries a lost race.
_UNLOCKED_TRIES = 10


class MinioStore:
    locking = True
    runs_outside_transactions = True

    def __init__(self, target: MinioTarget, lease_seconds: float) -> None:
        self._target = target
        self._lease_seconds = lease_seconds
        self._client: Minio | None = None
        # The index as this run last read or wrote it, and that version's ETag.
        self._index: RecordIndex | None = None
        self._etag: str | None = None
        self._originals: Originals | None = None
        # The lock holder's token while this run holds the lock and has fenced the index.
        self._holder: str | None = None
        self.description = f"MINIO ({target.url.masked}, bucket {BUCKET})"

    async def open(self) -> None:
        self._client = self._target.client()
        await self._call("connect to", lambda: self.client.bucket_exists(BUCKET))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close_session()  # type: ignore[no-untyped-call]

    @property
    def client(self) -> Minio:
        assert self._client is not None, "the store is not open"
        return self._client

    async def _call(self, doing: str, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except ClandestinoError:
            raise
        except Exception as exc:
            raise database_error(exc, self._target, doing) from exc

    async def ensure(self) -> None:
        await self._call("create the bucket on", lambda: create_bucket(self.client))

    async def applied(self) -> list[AppliedMigration]:
        return await self._call("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        index = await self._read_index()
        self._originals = await list_root(self.client)
        return index.applied(self._originals)

    async def _read_index(self) -> RecordIndex:
        found = await read(self.client, INDEX_KEY)
        self._index = RecordIndex.parse(found.body) if found else RecordIndex()
        self._etag = found.etag if found else None
        return self._index

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        def change(index: RecordIndex, originals: Originals) -> None:
            index.entry(name, originals)
            index.records.pop(name, None)
            index.records[name] = {
                "applied_at": datetime.now(UTC).isoformat(),
                "checksum": checksum,
                "duration_ms": duration_ms,
            }

        await self._change(change)

    async def remove(self, name: str) -> None:
        def change(index: RecordIndex, originals: Originals) -> None:
            index.entry(name, originals)
            index.records.pop(name, None)

        await self._change(change)

    async def update_checksum(self, name: str, checksum: str) -> None:
        def change(index: RecordIndex, originals: Originals) -> None:
            entry = index.entry(name, originals)
            if entry is not None:
                entry["checksum"] = checksum

        await self._change(change)

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        def change(index: RecordIndex, originals: Originals) -> None:
            entry = index.entry(name, originals)
            if entry is None:
                entry = index.records[name] = {"applied_at": None}
            since = datetime.now(UTC).isoformat()
            entry["in_progress"] = {"direction": direction, "owner": owner, "since": since}

        await self._change(change)

    async def clear_marker(self, name: str) -> None:
        def change(index: RecordIndex, originals: Originals) -> None:
            entry = index.entry(name, originals)
            if entry is None:
                return
            if entry.get("applied_at") is None:
                del index.records[name]
            else:
                entry.pop("in_progress", None)

        await self._change(change)

    async def _change(self, change: Callable[[RecordIndex, Originals], None]) -> None:
        await self._call("write to", lambda: self._write(change))

    async def _write(self, change: Callable[[RecordIndex, Originals], None]) -> None:
        if self._originals is None:
            self._originals = await list_root(self.client)
        if self._holder is not None:
            await self._write_fenced(change, self._originals)
            return
        # No lock held (a direct call): retry the read-change-write until no one wrote between.
        for _ in range(_UNLOCKED_TRIES):
            index = await self._read_index()
            change(index, self._originals)
            try:
                await self._put(index)
                return
            except Changed:
                continue
        raise Changed(INDEX_KEY)

    async def _write_fenced(
        self, change: Callable[[RecordIndex, Originals], None], originals: Originals
    ) -> None:
        if self._index is None or self._index.holder != self._holder:
            raise taken_over()
        index = copy.deepcopy(self._index)
        change(index, originals)
        try:
            await self._put(index)
        except Changed:
            raise taken_over() from None

    async def _put(self, index: RecordIndex) -> None:
        body = index.dump()
        if self._etag is None:
            self._etag = await write(self.client, INDEX_KEY, body, absent=True)
        else:
            self._etag = await write(self.client, INDEX_KEY, body, if_match=self._etag)
        self._index = index

    async def _fence(self, token: str) -> None:
        """Stamp the index with our token, so that the previous holder's writes fail from now."""
        for _ in range(_UNLOCKED_TRIES):
            index = await self._read_index()
            index.holder = token
            try:
                await self._put(index)
            except Changed:
                # A write of the previous holder slipped in between: read it and stamp again.
                continue
            self._holder = token
            return
        raise taken_over()

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]:
        return self._lock(timeout, on_wait)

    @asynccontextmanager
    async def _lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        document = MinioLease(self.client, self._fence, self._target.client, self._lease_seconds)
        held = lease_lock(document, timeout, self._lease_seconds, on_wait, self._target.where)
        async with AsyncExitStack() as stack:
            await self._call("lock", lambda: stack.enter_async_context(held))
            try:
                yield
            finally:
                self._holder = None

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, MinioInfra):
            return MinioInfra.bound_to(self.client)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        if isinstance(error, OSError):
            return database_error(error, self._target, "talk to")
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)
