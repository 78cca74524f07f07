"""The control index in Elasticsearch.

Records are the original's documents: id = migration name, `{"name", "created_at"}` (the UTC time
as Python prints it), plus our `checksum` and `duration_ms`; the document `init` marks the index
as the original made it. Every write refreshes, so the next search (another deployer's, a moment
later) sees it. Elasticsearch has no transactions: before each step a marker (`in_progress`) is
written on the migration's document, so a run that dies between a step and its record is seen by
the next one. The lock is a lease document in `<index>_lock` (see clandestino.lease), claimed with
op_type=create, renewed and taken over with if_seq_no / if_primary_term.

Elasticsearch offers a writer no clock of its own (no painless or ingest on every cluster), so no
deployer's wall clock judges the lease. Each deployer reads the node's clock once (the node
stats' `timestamp`) and carries it forward on its own monotonic clock, with the round trip's
uncertainty; the lease's `until` is stamped and judged on that server time. A deployer that may
not read node stats (no `monitor` privilege) judges by watching instead: it takes a lease over
once its version stayed unchanged for a whole lease on its monotonic clock.

Elasticsearch has no transactions either: each record and marker write is fenced by a real-time
read of the lock document just before it (still this run's token), and the holder stops itself
before its lease can run out, so an ex-holder that wakes up late finds the lock gone and writes
nothing.

The control index is made for a cluster: a replica wherever there is a second node
(auto_expand_replicas 0-1), writes that wait for every shard copy the index has, a refresh
after each write, and a refresh before each read, so a reader sees every record written before
it, by whatever wrote it (the original tool wrote without refresh). A read that meets the index
just created by another deployer, its primary not yet started, waits for it, within the
connection timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from clandestino.errors import ClandestinoError
from clandestino.lease import Lease, LockLost, lease_lock, renewal_client
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, Interruption, WaitCallback, utc_from_text
from clandestino_elasticsearch.connect import SearchTarget, database_error
from clandestino_elasticsearch.engine import (
    ApiError,
    ConflictError,
    ConnectionTimeout,
    NotFoundError,
    SearchClient,
    SearchError,
    TransportConnectionError,
    TransportError,
)
from clandestino_elasticsearch.infra import SearchInfra

__all__ = ["ElasticsearchStore", "SearchStore", "record_document"]

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
    "properties": {
        "owner": _KEYWORD,
        "token": _KEYWORD,
        "since": _KEYWORD,
        "until": _KEYWORD,
        "until_ms": {"type": "long"},
    }
}
# A replica wherever the cluster has a node for it, so a node lost loses no record; and writes
# that wait until every copy is active, so an acknowledged one is on all of them. Index
# settings rather than request parameters: an index the original tool made keeps its own.
_ALL_COPIES = "all"
_INDEX_SETTINGS = {
    "index": {"auto_expand_replicas": "0-1", "write": {"wait_for_active_shards": _ALL_COPIES}}
}
# How often a read retries while a new index's primary is starting.
_SHARD_WAIT_SECONDS = 0.2


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


class SearchStore:
    """The control index on Elasticsearch or OpenSearch: the target says which."""

    locking = True
    runs_outside_transactions = True

    def __init__(
        self,
        target: SearchTarget,
        index: str,
        lease_seconds: float,
        client: Any = None,
    ) -> None:
        self._target = target
        # A fleet's client, shared by the targets on its cluster; closed by the fleet, not here.
        self._shared = target.wrap(client) if client is not None else None
        # Index names must be lower case; the setting's identifier check allows upper case.
        self._index = index.lower()
        self._lease_seconds = lease_seconds
        self._client: SearchClient | None = None
        self._lease: _ElasticsearchLease | None = None
        self._clock: ServerClock | None = None
        self.description = f"{target.mode} ({target.where}, index {self._index})"

    async def open(self) -> None:
        self._client = self._shared or self._target.search_client()
        await self._call("connect to", lambda: self._target.check_server(self._es))
        self._clock = await ServerClock.read(self._es)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            if client is not self._shared:
                await client.close()

    @property
    def _es(self) -> SearchClient:
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
            await self._es.indices.create(
                index=index,
                mappings=mapping,
                settings=_INDEX_SETTINGS,
                wait_for_active_shards=_ALL_COPIES,
            )
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
                index=self._index,
                id=INIT_ID,
                document={"name": "clandestino init"},
                refresh=True,
            )

    async def applied(self) -> list[AppliedMigration]:
        return await self._call("read", self._applied_when_ready)

    async def _applied_when_ready(self) -> list[AppliedMigration]:
        """The records, once the index can answer: another deployer may have just created it."""
        deadline = time.monotonic() + self._target.timeout
        while True:
            try:
                return await self._applied()
            except ApiError as exc:
                if not _shard_not_ready(exc) or time.monotonic() >= deadline:
                    raise
            await self._wait_for_shards(deadline)

    async def _wait_for_shards(self, deadline: float) -> None:
        left = max(0.0, deadline - time.monotonic())
        try:
            await self._es.cluster.health(
                index=self._index,
                wait_for_no_initializing_shards=True,
                wait_for_active_shards="1",
                timeout=f"{max(1, round(left * 1000))}ms",
            )
        except ApiError as exc:
            if not _shard_not_ready(exc):
                raise
        await asyncio.sleep(_SHARD_WAIT_SECONDS)

    async def _applied(self) -> list[AppliedMigration]:
        try:
            # What others wrote without a refresh (the original tool did) becomes visible.
            await self._es.indices.refresh(index=self._index)
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
        await self._fenced(
            lambda: self._es.index(
                index=self._index,
                id=name,
                document=document,
                refresh=True,
            ),
        )

    async def remove(self, name: str) -> None:
        await self._fenced(lambda: self._delete(name))

    async def _delete(self, name: str) -> None:
        try:
            await self._es.delete(index=self._index, id=name, refresh=True)
        except NotFoundError:
            return

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._fenced(
            lambda: self._es.update(
                index=self._index,
                id=name,
                doc={"checksum": checksum},
                refresh=True,
            ),
        )

    async def _fenced(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Write only while this run holds the lease (checked just before the write)."""

        async def checked() -> None:
            if self._lease is not None:
                await self._lease.check()
            await write()

        await self._call("write to", checked)

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        marker = {"direction": direction, "owner": owner, "since": _stamp(datetime.now(UTC))}
        await self._fenced(
            lambda: self._es.update(
                index=self._index,
                id=name,
                doc={"in_progress": marker},
                upsert={"name": name, "in_progress": marker},
                refresh=True,
            ),
        )

    async def clear_marker(self, name: str) -> None:
        await self._fenced(lambda: self._clear_marker(name))

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
        document = _ElasticsearchLease(
            self._es, index, self._renewal_client, self._clock, self._lease_seconds
        )
        held = lease_lock(document, timeout, self._lease_seconds, on_wait, self._target.where)
        async with AsyncExitStack() as stack:
            await self._call("lock", lambda: stack.enter_async_context(held))
            self._lease = document
            try:
                yield
            finally:
                self._lease = None

    @asynccontextmanager
    async def _renewal_client(self) -> AsyncIterator[SearchClient]:
        """A client of the renewal loop's: a fleet's host shares one per cluster between its
        targets; a run of its own makes one and closes it."""
        target = self._target
        shared = renewal_client(_cluster_key(target), target.client, _close_client)
        client = target.wrap(shared) if shared is not None else target.search_client()
        try:
            yield client
        finally:
            if shared is None:
                await client.close()

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, SearchInfra) and declared.target_type() is type(self._target):
            return type(declared).bound_to(self._es.raw)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        # A migration's own calls raise the library's errors; the store's, its own.
        if not isinstance(error, SearchError):
            error = self._target.translate(error) or error
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


@dataclass(frozen=True)
class ServerClock:
    """The node's clock, read once and carried forward on the monotonic clock: wall-clock steps
    on this machine do not move it."""

    server_ms: float
    read_at: float
    uncertainty_ms: float

    @classmethod
    async def read(cls, client: SearchClient) -> ServerClock | None:
        """None when the node will not say (no `monitor` privilege): leases are then watched."""
        sent = time.monotonic()
        try:
            stats = await client.nodes.stats(
                node_id="_local", metric="os", filter_path="nodes.*.timestamp"
            )
        except (ApiError, TransportError):
            return None
        received = time.monotonic()
        stamps = [node.get("timestamp") for node in stats.get("nodes", {}).values()]
        if len(stamps) != 1 or not isinstance(stamps[0], int):
            return None
        return cls(stamps[0], (sent + received) / 2, (received - sent) * 500 + 1)

    def now_ms(self) -> float:
        return self.server_ms + (time.monotonic() - self.read_at) * 1000


class _ElasticsearchLease:
    """The lease lock's document, claimed with op_type=create, swapped with if_seq_no. Its `since`
    is for people only: no decision reads a time from it."""

    def __init__(
        self,
        client: SearchClient,
        index: str,
        renewal_client: Callable[[], AbstractAsyncContextManager[SearchClient]],
        clock: ServerClock | None,
        lease_seconds: float,
    ) -> None:
        self._es = client
        self._index = index
        self._renewal_client = renewal_client
        self._clock = clock
        self._lease_ms = lease_seconds * 1000
        self._mine: Lease | None = None

    async def create(self, owner: str, token: str) -> Lease | None:
        lease = Lease(owner, token, datetime.now(UTC))
        try:
            response = await self._es.index(
                index=self._index,
                id=_LOCK_ID,
                document=_fields(lease, _until(self._clock, self._lease_ms)),
                op_type="create",
                refresh=True,
            )
        except ConflictError:
            return None
        self._mine = _versioned(lease, response)
        return self._mine

    async def read(self) -> Lease | None:
        try:
            found = await self._es.get(index=self._index, id=_LOCK_ID)
        except NotFoundError:
            return None
        source = found["_source"]
        until = source.get("until_ms")
        expired = None
        if self._clock is not None and isinstance(until, int | float):
            # Only when it has run out even if this deployer's reading of the clock is late.
            expired = self._clock.now_ms() - self._clock.uncertainty_ms > until
        return Lease(
            owner=str(source.get("owner")),
            token=str(source.get("token")),
            since=utc_from_text(source.get("since")),
            version=(found["_seq_no"], found["_primary_term"]),
            expired=expired,
        )

    async def take_over(self, current: Lease, owner: str, token: str) -> Lease | None:
        new = Lease(owner, token, datetime.now(UTC))
        until = _until(self._clock, self._lease_ms)
        self._mine = await _write_if(self._es, self._index, current, new, until)
        return self._mine

    async def fence(self, mine: Lease) -> None:
        # The lock document is the fence: writes check that it still holds this run's token.
        self._mine = mine

    async def check(self) -> None:
        assert self._mine is not None
        current = await self.read()
        if current is None or current.token != self._mine.token:
            raise LockLost(
                "lost the migration lock: another deployer took it over, so nothing more is"
                " recorded",
                "this run stalled longer than the lease (CLANDESTINO_LOCK_LEASE); check what"
                " the interrupted migration did",
            )

    async def release(self, mine: Lease) -> None:
        seq_no, primary_term = mine.version
        try:
            await self._es.delete(
                index=self._index,
                id=_LOCK_ID,
                if_seq_no=seq_no,
                if_primary_term=primary_term,
                refresh=True,
            )
        except (ConflictError, NotFoundError):
            return

    @asynccontextmanager
    async def renewer(self) -> AsyncIterator[_ElasticsearchRenewer]:
        async with self._renewal_client() as client:
            yield _ElasticsearchRenewer(client, self._index, self._clock, self._lease_ms)


class _ElasticsearchRenewer:
    def __init__(
        self, client: SearchClient, index: str, clock: ServerClock | None, lease_ms: float
    ) -> None:
        self._es = client
        self._index = index
        self._clock = clock
        self._lease_ms = lease_ms

    async def renew(self, mine: Lease) -> Lease | None:
        # A new version each time: that is what tells watching waiters the holder is alive.
        return await _write_if(
            self._es, self._index, mine, mine, _until(self._clock, self._lease_ms)
        )


def _cluster_key(target: SearchTarget) -> str:
    """The cluster and the credentials its client is made with (in memory only)."""
    from clandestino_elasticsearch.connect import _revealed

    return repr((target.node, sorted((k, repr(_revealed(v))) for k, v in target.options.items())))


async def _close_client(client: Any) -> None:
    await client.close()


def _until(clock: ServerClock | None, lease_ms: float) -> int | None:
    """The lease's end on the server's clock, erring late; None without a server clock."""
    if clock is None:
        return None
    return round(clock.now_ms() + clock.uncertainty_ms + lease_ms)


async def _write_if(
    client: SearchClient, index: str, expected: Lease, new: Lease, until: int | None
) -> Lease | None:
    seq_no, primary_term = expected.version
    try:
        response = await client.index(
            index=index,
            id=_LOCK_ID,
            document=_fields(new, until),
            if_seq_no=seq_no,
            if_primary_term=primary_term,
            refresh=True,
        )
    except (ConflictError, NotFoundError):
        return None
    return _versioned(new, response)


def _shard_not_ready(exc: ApiError) -> bool:
    """A 503 for a shard that is not started yet (a new index), or a search none could answer."""
    text = str(exc)
    return exc.status == 503 or any(
        reason in text
        for reason in (
            "no_shard_available",
            "NoShardAvailable",
            "all shards failed",
            "unavailable_shards",
        )
    )


def _fields(lease: Lease, until_ms: int | None) -> dict[str, Any]:
    since = lease.since or datetime.now(UTC)
    fields: dict[str, Any] = {
        "owner": lease.owner,
        "token": lease.token,
        "since": since.isoformat(),
    }
    if until_ms is not None:
        fields["until_ms"] = until_ms
    return fields


def _versioned(lease: Lease, response: Any) -> Lease:
    return Lease(
        lease.owner,
        lease.token,
        lease.since,
        version=(response["_seq_no"], response["_primary_term"]),
    )


# The name it had before OpenSearch shared it.
ElasticsearchStore = SearchStore
