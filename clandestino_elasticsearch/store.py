"""The control index in Elasticsearch.

Records are the original's documents: id = migration name, `{"name", "created_at"}` (the UTC time
as Python prints it), plus our `checksum` and `duration_ms`; the document `init` marks the index
as the original made it. Every write refreshes, so the next search (another deployer's, a moment
later) sees it. Elasticsearch has no transactions: before each step a marker (`in_progress`) is
written on the migration's document, so a run that dies between a step and its record is seen by
the next one. The lock is a lease document in `<index>_lock` (see clandestino.lease), claimed with
op_type=create and taken over with if_seq_no / if_primary_term.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, ConflictError, NotFoundError

from clandestino.errors import ClandestinoError
from clandestino.lease import Lease, lease_lock
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, Interruption, WaitCallback, utc_from_text
from clandestino_elasticsearch.connect import ElasticsearchTarget, database_error
from clandestino_elasticsearch.infra import ElasticsearchInfra

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

__all__ = ["ElasticsearchStore", "record_document"]

T = TypeVar("T")

INIT_ID = "init"
_LOCK_ID = "migration-lock"
_PAGE = 10_000
_KEYWORD = {"type": "keyword"}
_RECORD_MAPPING = {
    "properties": {
        "name": _KEYWORD,
        "created_at": _KEYWORD,
        "checksum": _KEYWORD,
        "duration_ms": {"type": "long"},
        "in_progress": {
            "properties": {"direction": _KEYWORD, "owner": _KEYWORD, "since": _KEYWORD}
        },
    }
}
_LOCK_MAPPING = {
    "properties": {"owner": _KEYWORD, "token": _KEYWORD, "since": _KEYWORD, "until": _KEYWORD}
}


def _stamp(moment: datetime) -> str:
    """A UTC time as the original wrote it: str() of a naive datetime, which sorts as text."""
    return str(moment.astimezone(UTC).replace(tzinfo=None))


def record_document(name: str, checksum: str | None, duration_ms: int | None) -> dict[str, Any]:
    return {
        "name": name,
        "created_at": _stamp(datetime.now(UTC)),
        "checksum": checksum,
        "duration_ms": duration_ms,
    }


class ElasticsearchStore:
    locking = True
    runs_outside_transactions = True

    def __init__(self, target: ElasticsearchTarget, index: str, lease_seconds: float) -> None:
        self._target = target
        # Index names must be lower case; the setting's identifier check allows upper case.
        self._index = index.lower()
        self._lease_seconds = lease_seconds
        self._client: AsyncElasticsearch | None = None
        self.description = f"ELASTICSEARCH ({target.where}, index {self._index})"

    async def open(self) -> None:
        self._client = self._target.client()
        await self._call("connect to", self._es.info)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    @property
    def _es(self) -> AsyncElasticsearch:
        assert self._client is not None, "the store is not open"
        return self._client

    async def _call(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (ApiError, TransportError) as exc:
            raise database_error(exc, self._target, doing) from exc

    async def _create_index(self, index: str, mapping: dict[str, Any]) -> bool:
        """Create `index` unless it exists; True if this call created it."""
        if await self._es.indices.exists(index=index):
            return False
        try:
            await self._es.indices.create(index=index, mappings=mapping)
        except ApiError as exc:
            if "resource_already_exists" in str(exc):
                return False
            raise
        return True

    async def ensure(self) -> None:
        await self._call("create", self._ensure)

    async def _ensure(self) -> None:
        if await self._create_index(self._index, _RECORD_MAPPING):
            # The original wrote this when it created the index; keep its shape for it.
            await self._es.index(
                index=self._index, id=INIT_ID, document={"name": "clandestino init"}, refresh=True
            )

    async def applied(self) -> list[AppliedMigration]:
        return await self._call("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        try:
            response = await self._es.search(
                index=self._index,
                query={"bool": {"must_not": {"ids": {"values": [INIT_ID]}}}},
                size=_PAGE,
                track_total_hits=True,
            )
        except NotFoundError:
            return []
        hits = response["hits"]["hits"]
        if response["hits"]["total"]["value"] > len(hits):
            hits = await self._all_pages()
        records = [_applied(hit["_id"], hit["_source"]) for hit in hits]
        # Application order: the time each was recorded (markers, which have none, first).
        return sorted(records, key=lambda r: (r.applied_at is not None, r.applied_at, r.name))

    async def _all_pages(self) -> list[dict[str, Any]]:
        """More records than one page holds: read them all through a scroll."""
        response = await self._es.search(
            index=self._index,
            query={"bool": {"must_not": {"ids": {"values": [INIT_ID]}}}},
            size=_PAGE,
            scroll="1m",
        )
        hits: list[dict[str, Any]] = list(response["hits"]["hits"])
        scroll_id = response.get("_scroll_id")
        try:
            while scroll_id and response["hits"]["hits"]:
                response = await self._es.scroll(scroll_id=scroll_id, scroll="1m")
                hits.extend(response["hits"]["hits"])
                scroll_id = response.get("_scroll_id")
        finally:
            if scroll_id:
                await self._es.clear_scroll(scroll_id=scroll_id)
        return hits

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        document = record_document(name, checksum, duration_ms)
        await self._call(
            "write to",
            lambda: self._es.index(index=self._index, id=name, document=document, refresh=True),
        )

    async def remove(self, name: str) -> None:
        await self._call("write to", lambda: self._delete(name))

    async def _delete(self, name: str) -> None:
        try:
            await self._es.delete(index=self._index, id=name, refresh=True)
        except NotFoundError:
            return

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._call(
            "write to",
            lambda: self._es.update(
                index=self._index, id=name, doc={"checksum": checksum}, refresh=True
            ),
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        marker = {"direction": direction, "owner": owner, "since": _stamp(datetime.now(UTC))}
        await self._call(
            "write to",
            lambda: self._es.update(
                index=self._index,
                id=name,
                doc={"in_progress": marker},
                upsert={"name": name, "in_progress": marker},
                refresh=True,
            ),
        )

    async def clear_marker(self, name: str) -> None:
        await self._call("write to", lambda: self._clear_marker(name))

    async def _clear_marker(self, name: str) -> None:
        try:
            found = await self._es.get(index=self._index, id=name)
        except NotFoundError:
            return
        source = dict(found["_source"])
        source.pop("in_progress", None)
        if "created_at" not in source:
            await self._delete(name)
            return
        await self._es.index(
            index=self._index,
            id=name,
            document=source,
            if_seq_no=found["_seq_no"],
            if_primary_term=found["_primary_term"],
            refresh=True,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # Elasticsearch has none; the markers stand in for it.
        yield

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]:
        return self._lock(timeout, on_wait)

    @asynccontextmanager
    async def _lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        index = f"{self._index}_lock"
        await self._call("create", lambda: self._create_index(index, _LOCK_MAPPING))
        document = _ElasticsearchLease(self._es, index)
        async with lease_lock(document, timeout, self._lease_seconds, on_wait, self._target.where):
            yield

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, ElasticsearchInfra):
            return ElasticsearchInfra.bound_to(self._es)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        if isinstance(error, TransportConnectionError | ConnectionTimeout):
            return database_error(error, self._target, "talk to")
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)


def _applied(name: str, source: dict[str, Any]) -> AppliedMigration:
    marker = source.get("in_progress")
    interrupted = None
    if isinstance(marker, dict):
        interrupted = Interruption(
            str(marker.get("direction", "up")),
            str(marker.get("owner", "?")),
            utc_from_text(marker.get("since")),
        )
    duration = source.get("duration_ms")
    return AppliedMigration(
        name=str(source.get("name", name)),
        applied_at=utc_from_text(source.get("created_at")),
        checksum=source.get("checksum"),
        duration_ms=int(duration) if duration is not None else None,
        interrupted=interrupted,
    )


class _ElasticsearchLease:
    """The lease lock's document, claimed with op_type=create, swapped with if_seq_no."""

    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self._es = client
        self._index = index

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def create(self, lease: Lease) -> Lease | None:
        try:
            response = await self._es.index(
                index=self._index, id=_LOCK_ID, document=_fields(lease), op_type="create"
            )
        except ConflictError:
            return None
        return _versioned(lease, response)

    async def read(self) -> Lease | None:
        try:
            found = await self._es.get(index=self._index, id=_LOCK_ID)
        except NotFoundError:
            return None
        source = found["_source"]
        until = utc_from_text(source["until"])
        assert until is not None
        return Lease(
            owner=str(source["owner"]),
            token=str(source["token"]),
            since=utc_from_text(source.get("since")) or until,
            until=until,
            version=(found["_seq_no"], found["_primary_term"]),
        )

    async def replace(self, current: Lease, new: Lease) -> Lease | None:
        return await self._write_if(current, new)

    async def renew(self, mine: Lease, until: datetime) -> Lease | None:
        return await self._write_if(mine, Lease(mine.owner, mine.token, mine.since, until))

    async def _write_if(self, expected: Lease, new: Lease) -> Lease | None:
        seq_no, primary_term = expected.version
        try:
            response = await self._es.index(
                index=self._index,
                id=_LOCK_ID,
                document=_fields(new),
                if_seq_no=seq_no,
                if_primary_term=primary_term,
            )
        except (ConflictError, NotFoundError):
            return None
        return _versioned(new, response)

    async def delete(self, mine: Lease) -> None:
        seq_no, primary_term = mine.version
        try:
            await self._es.delete(
                index=self._index, id=_LOCK_ID, if_seq_no=seq_no, if_primary_term=primary_term
            )
        except (ConflictError, NotFoundError):
            return


def _fields(lease: Lease) -> dict[str, Any]:
    return {
        "owner": lease.owner,
        "token": lease.token,
        "since": lease.since.isoformat(),
        "until": lease.until.isoformat(),
    }


def _versioned(lease: Lease, response: Any) -> Lease:
    return Lease(
        lease.owner,
        lease.token,
        lease.since,
        lease.until,
        version=(response["_seq_no"], response["_primary_term"]),
    )
