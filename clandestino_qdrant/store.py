"""The control records in a Qdrant collection (`clandestino`, as in the original).

One point per migration, as the original wrote it (id from the name's SHA-256, vector [1],
payload name and created_at), plus our checksum, duration and marker in the payload. applied()
is a scroll of the collection, one call per 10,000 records.

No lock: Qdrant offers no compare-and-set that we know to be atomic across clients, so this store
says `locking = False` and the run prints that it has no lock. Deployers that may run at once
need a lock of their own around `cdt -m` (a CI concurrency group, a lock in another database).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from clandestino.errors import ClandestinoError
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, Interruption, WaitCallback, utc_from_text
from clandestino_qdrant.connect import QdrantTarget, database_error
from clandestino_qdrant.infra import QdrantInfra
from clandestino_qdrant.points import COLLECTION, point_id

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

__all__ = ["QdrantStore"]

T = TypeVar("T")
_PAGE = 10_000


class QdrantStore:
    locking = False
    runs_outside_transactions = True

    def __init__(self, target: QdrantTarget) -> None:
        self._target = target
        self._client: AsyncQdrantClient | None = None
        self.description = (
            f"QDRANT ({target.url.masked}, collection {COLLECTION}; no lock: Qdrant has no"
            " compare-and-set)"
        )

    @property
    def client(self) -> AsyncQdrantClient:
        assert self._client is not None, "the store is not open"
        return self._client

    async def open(self) -> None:
        self._client = await self._call("connect to", self._connect)

    async def _connect(self) -> AsyncQdrantClient:
        client = self._target.client()
        self._client = client
        await client.get_collections()
        return client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _call(self, doing: str, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except ClandestinoError:
            raise
        except Exception as exc:
            raise database_error(exc, self._target, doing) from exc

    async def ensure(self) -> None:
        await self._call("create the collection on", self._ensure)

    async def _ensure(self) -> None:
        from qdrant_client.models import Distance, VectorParams

        if await self.client.collection_exists(COLLECTION):
            return
        vectors = VectorParams(size=1, distance=Distance.COSINE)
        try:
            await self.client.create_collection(COLLECTION, vectors_config=vectors)
        except Exception:
            # Another deployer made it first; anything else shows in the next call.
            if not await self.client.collection_exists(COLLECTION):
                raise

    async def applied(self) -> list[AppliedMigration]:
        return await self._call("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        if not await self.client.collection_exists(COLLECTION):
            return []
        found: list[AppliedMigration] = []
        offset: Any = None
        while True:
            points, offset = await self.client.scroll(
                COLLECTION, limit=_PAGE, offset=offset, with_payload=True, with_vectors=False
            )
            found += [_applied(point.payload or {}) for point in points]
            if offset is None:
                break
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda record: (record.applied_at or oldest, record.name))

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        payload = {
            "name": name,
            "created_at": str(datetime.now(UTC)),
            "checksum": checksum,
            "duration_ms": duration_ms,
        }
        await self._call("write to", lambda: self._upsert(name, payload))

    async def _upsert(self, name: str, payload: dict[str, Any]) -> None:
        from qdrant_client.models import PointStruct

        point = PointStruct(id=point_id(name), vector=[1.0], payload=payload)
        await self.client.upsert(COLLECTION, points=[point], wait=True)

    async def remove(self, name: str) -> None:
        await self._call(
            "write to",
            lambda: self.client.delete(COLLECTION, points_selector=[point_id(name)], wait=True),
        )

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._call(
            "write to",
            lambda: self.client.set_payload(
                COLLECTION, payload={"checksum": checksum}, points=[point_id(name)], wait=True
            ),
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        marker = {"direction": direction, "owner": owner, "since": str(datetime.now(UTC))}
        await self._call("write to", lambda: self._mark(name, marker))

    async def _mark(self, name: str, marker: dict[str, str]) -> None:
        if await self._payload(name) is None:
            await self._upsert(name, {"name": name, "in_progress": marker})
            return
        await self.client.set_payload(
            COLLECTION, payload={"in_progress": marker}, points=[point_id(name)], wait=True
        )

    async def _payload(self, name: str) -> dict[str, Any] | None:
        points = await self.client.retrieve(COLLECTION, ids=[point_id(name)], with_payload=True)
        return (points[0].payload or {}) if points else None

    async def clear_marker(self, name: str) -> None:
        await self._call("write to", lambda: self._clear_marker(name))

    async def _clear_marker(self, name: str) -> None:
        payload = await self._payload(name)
        if payload is None:
            return
        if not payload.get("created_at"):
            await self.client.delete(COLLECTION, points_selector=[point_id(name)], wait=True)
            return
        await self.client.delete_payload(
            COLLECTION, keys=["in_progress"], points=[point_id(name)], wait=True
        )

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]:
        # Nothing to take: see the module's docstring. The run has said it has no lock.
        return nullcontext()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, QdrantInfra):
            return QdrantInfra.bound_to(self.client)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        if isinstance(error, OSError):
            return database_error(error, self._target, "talk to")
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)


def _applied(payload: dict[str, Any]) -> AppliedMigration:
    marker = payload.get("in_progress")
    interrupted = None
    if isinstance(marker, dict):
        since = utc_from_text(marker.get("since"))
        interrupted = Interruption(str(marker.get("direction")), str(marker.get("owner")), since)
    return AppliedMigration(
        name=str(payload.get("name")),
        applied_at=utc_from_text(payload.get("created_at")),
        checksum=payload.get("checksum"),
        duration_ms=payload.get("duration_ms"),
        interrupted=interrupted,
    )
