"""The control collection in MongoDB.

Records are the original's documents, `{"name", "created_at"}` plus our `checksum` and
`duration_ms`, in the connection string's default database, with a unique index on `name`. The
lock is a lease document in `<collection>_lock` (see clandestino.lease). Before each step a marker
(`in_progress`) is written on the migration's document, so a run that dies between a step and
its record is seen by the next one. On a replica set each migration runs in a transaction with
its record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from clandestino.errors import ClandestinoError
from clandestino.lease import Lease, lease_lock
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, Interruption, WaitCallback
from clandestino_mongo.connect import MongoTarget, ServerFacts, database_error
from clandestino_mongo.infra import MongoInfra
from clandestino_mongo.repository import INIT_DOCUMENT

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.collection import AsyncCollection

__all__ = ["MongoStore"]

T = TypeVar("T")
Document = dict[str, Any]

_LOCK_ID = "migration-lock"
_CLEAN_UP_SECONDS = 2.0
_RECORD_FIELDS = {"_id": 0, "name": 1, "created_at": 1, "checksum": 1, "duration_ms": 1}


class MongoStore:
    locking = True
    runs_outside_transactions = True

    def __init__(self, target: MongoTarget, collection: str, lease_seconds: float) -> None:
        self._target = target
        self._collection_name = collection
        self._lease_seconds = lease_seconds
        self._client: AsyncMongoClient[Document] | None = None
        self._facts = ServerFacts(False, timedelta(0))
        self._session: AsyncClientSession | None = None
        self.description = f"MONGO ({target.masked}, collection {collection})"

    async def open(self) -> None:
        self._client = self._target.client()
        self._facts = await self._target.facts(self._client)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(PyMongoError, TimeoutError):
                await asyncio.wait_for(client.close(), _CLEAN_UP_SECONDS)

    @property
    def _db(self) -> Any:
        assert self._client is not None, "the store is not open"
        return self._client[self._target.database]

    @property
    def _records(self) -> AsyncCollection[Document]:
        collection: AsyncCollection[Document] = self._db[self._collection_name]
        return collection

    async def _call(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except PyMongoError as exc:
            raise database_error(exc, self._target, doing) from exc

    def now(self) -> datetime:
        return datetime.now(UTC) + self._facts.clock_offset

    async def ensure(self) -> None:
        await self._call("create", self._ensure)

    async def _ensure(self) -> None:
        existing = await self._db.list_collection_names(filter={"name": self._collection_name})
        if not existing:
            # The original wrote this when it created the collection; it still looks for it.
            await self._records.insert_one(dict(INIT_DOCUMENT))
        indexes = await self._records.index_information()
        if not any(index.get("key") == [("name", 1)] for index in indexes.values()):
            try:
                await self._records.create_index([("name", ASCENDING)], unique=True)
            except (DuplicateKeyError, OperationFailure) as exc:
                # Duplicates the original's races left: reported by the plan, not fatal here.
                if not _is_duplicate(exc):
                    raise

    async def applied(self) -> list[AppliedMigration]:
        return await self._call("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        cursor = self._records.find(
            {"name": {"$ne": INIT_DOCUMENT["name"]}},
            {**_RECORD_FIELDS, "in_progress": 1},
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
        )
        return [_applied(document) for document in await cursor.to_list(None)]

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        fields = {"created_at": self.now(), "checksum": checksum, "duration_ms": duration_ms}
        await self._call(
            "write to",
            lambda: self._records.update_one(
                {"name": name},
                {"$set": fields, "$unset": {"in_progress": ""}},
                upsert=True,
                session=self._session,
            ),
        )

    async def remove(self, name: str) -> None:
        await self._call(
            "write to", lambda: self._records.delete_many({"name": name}, session=self._session)
        )

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._call(
            "write to",
            lambda: self._records.update_many({"name": name}, {"$set": {"checksum": checksum}}),
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # Outside any transaction: the marker must outlive the step's own failure. It names the
        # session the step's transaction will use, so a repair can end that transaction if this
        # process dies with it open (the server would keep it, and its locks, for a minute).
        marker: Document = {"direction": direction, "owner": owner, "since": self.now()}
        if self._facts.transactions and self._client is not None:
            self._session = self._client.start_session()
            marker["session"] = self._session.session_id
        await self._call(
            "write to",
            lambda: self._records.update_one(
                {"name": name}, {"$set": {"in_progress": marker}}, upsert=True
            ),
        )

    async def clear_marker(self, name: str) -> None:
        await self._call("write to", lambda: self._clear_marker(name))

    async def _clear_marker(self, name: str) -> None:
        found = await self._records.find_one({"name": name}, {"in_progress.session": 1})
        session = ((found or {}).get("in_progress") or {}).get("session")
        if session:
            # A dead run's transaction may still be open on the server, holding its writes.
            with contextlib.suppress(PyMongoError):
                await self._db.client.admin.command("killSessions", [session])
        await self._records.delete_one(
            {"name": name, "in_progress.direction": "up", "created_at": {"$exists": False}}
        )
        await self._records.update_many({"name": name}, {"$unset": {"in_progress": ""}})

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if not self._facts.transactions or self._client is None:
            yield
            return
        session = self._session or self._client.start_session()
        await self._call("start a transaction on", session.start_transaction)
        self._session = session
        committed = False
        try:
            yield
            await self._call("commit to", session.commit_transaction)
            committed = True
        finally:
            self._session = None
            # Bounded: after a lost connection each would wait the whole selection timeout.
            if not committed:
                with contextlib.suppress(PyMongoError, TimeoutError):
                    await asyncio.wait_for(session.abort_transaction(), _CLEAN_UP_SECONDS)
            with contextlib.suppress(PyMongoError, TimeoutError):
                await asyncio.wait_for(session.end_session(), _CLEAN_UP_SECONDS)

    def current_session(self) -> AsyncClientSession | None:
        return self._session

    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractAsyncContextManager[None]:
        document = _MongoLease(self._db[f"{self._collection_name}_lock"], self.now)
        return lease_lock(document, timeout, self._lease_seconds, on_wait, self._target.where)

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, MongoInfra) and declared.targets_configured_database():
            assert self._client is not None
            return MongoInfra.bound_to(self._client, self._target.database, self)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        if isinstance(error, ConnectionFailure):
            return database_error(error, self._target, "talk to")
        return None

    def legacy_repository(self) -> object:
        return StoreRepository(self)


def _applied(document: Document) -> AppliedMigration:
    marker = document.get("in_progress")
    interrupted = None
    if isinstance(marker, dict):
        interrupted = Interruption(
            str(marker.get("direction", "up")), str(marker.get("owner", "?")), marker.get("since")
        )
    created = document.get("created_at")
    return AppliedMigration(
        name=str(document["name"]),
        applied_at=_as_utc(created),
        checksum=document.get("checksum"),
        duration_ms=document.get("duration_ms"),
        interrupted=interrupted,
    )


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _is_duplicate(exc: PyMongoError) -> bool:
    return isinstance(exc, DuplicateKeyError) or getattr(exc, "code", None) == 11000


class _MongoLease:
    """The lease lock's document, in its own collection, claimed by a unique `_id`."""

    def __init__(self, collection: AsyncCollection[Document], now: Callable[[], datetime]) -> None:
        self._collection = collection
        self.now = now

    async def create(self, lease: Lease) -> Lease | None:
        try:
            await self._collection.insert_one({"_id": _LOCK_ID, **_fields(lease)})
        except DuplicateKeyError:
            return None
        return lease

    async def read(self) -> Lease | None:
        return _lease(await self._collection.find_one({"_id": _LOCK_ID}))

    async def replace(self, current: Lease, new: Lease) -> Lease | None:
        found = await self._collection.find_one_and_update(
            {"_id": _LOCK_ID, "token": current.token, "until": current.version},
            {"$set": _fields(new)},
            return_document=ReturnDocument.AFTER,
        )
        return _lease(found)

    async def renew(self, mine: Lease, until: datetime) -> Lease | None:
        found = await self._collection.find_one_and_update(
            {"_id": _LOCK_ID, "token": mine.token},
            {"$set": {"until": until}},
            return_document=ReturnDocument.AFTER,
        )
        return _lease(found)

    async def delete(self, mine: Lease) -> None:
        await self._collection.delete_one({"_id": _LOCK_ID, "token": mine.token})


def _fields(lease: Lease) -> Document:
    return {"owner": lease.owner, "token": lease.token, "since": lease.since, "until": lease.until}


def _lease(document: Document | None) -> Lease | None:
    if document is None:
        return None
    until = _as_utc(document["until"])
    assert until is not None
    # The stored `until` (millisecond precision) is the version a takeover must still find.
    return Lease(
        str(document["owner"]),
        str(document["token"]),
        _as_utc(document.get("since")) or until,
        until,
        version=document["until"],
    )
