"""The control collection in MongoDB.

Records are the original's documents, `{"name", "created_at"}` plus our `checksum` and
`duration_ms`, in the connection string's default database, with a unique index on `name`. The
lock is a lease document in `<collection>_lock` (see clandestino.lease). Before each step a marker
(`in_progress`) is written on the migration's document, so a run that dies between a step and
its record is seen by the next one. On a replica set each migration runs in a transaction with
its record.

The lease is judged by the server's clock: it stamps `until` with `$$NOW` and takes an expired
lease over in one conditional update. Every holder gets an `epoch` one above the last, and makes
it the fence document's (`migration-fence`) before it reads anything; every record and marker
write then updates the fence document on condition that it still holds that epoch, in the same
transaction as the write on a replica set (a takeover meanwhile is a write conflict or a
mismatch, and nothing is written). On a standalone server there are no transactions: the fence
is checked just before each write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ASCENDING
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from clandestino.errors import ClandestinoError
from clandestino.lease import Lease, LockLost, lease_lock, renewal_client
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
_FENCE_ID = "migration-fence"
_WRITE_CONFLICT = 112
# Whether the lease ran out, by the server's clock. As milliseconds: SecantusDB compares a stored
# date with $$NOW wrongly, numbers right (and MongoDB either way).
_EXPIRED = {"$lt": [{"$toLong": "$until"}, {"$toLong": "$$NOW"}]}
# `until` of a released lock: long expired, on any clock.
_RELEASED_UNTIL = datetime(1970, 1, 1, tzinfo=UTC)
_CLEAN_UP_SECONDS = 2.0
_RECORD_FIELDS = {"_id": 0, "name": 1, "created_at": 1, "checksum": 1, "duration_ms": 1}


class MongoStore:
    locking = True
    runs_outside_transactions = True

    def __init__(
        self,
        target: MongoTarget,
        collection: str,
        lease_seconds: float,
        client: AsyncMongoClient[Document] | None = None,
    ) -> None:
        self._target = target
        # A fleet's client, shared by the targets on its server; closed by the fleet, not here.
        self._shared = client
        self._collection_name = collection
        self._lease_seconds = lease_seconds
        self._client: AsyncMongoClient[Document] | None = None
        self._facts = ServerFacts(False, timedelta(0))
        self._session: AsyncClientSession | None = None
        self._lease: _MongoLease | None = None
        self.description = f"MONGO ({target.masked}, collection {collection})"

    async def open(self) -> None:
        self._client = self._shared or self._target.client()
        self._facts = await self._target.facts(self._client)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            if client is self._shared:
                return
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
        await self._fenced(
            lambda session: self._records.update_one(
                {"name": name},
                {"$set": fields, "$unset": {"in_progress": ""}},
                upsert=True,
                session=session,
            ),
        )

    async def remove(self, name: str) -> None:
        await self._fenced(
            lambda session: self._records.delete_many({"name": name}, session=session)
        )

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._fenced(
            lambda session: self._records.update_many(
                {"name": name}, {"$set": {"checksum": checksum}}, session=session
            ),
        )

    async def _fenced(self, write: Callable[[AsyncClientSession | None], Awaitable[Any]]) -> None:
        """Write only while this run holds the lease: in the step's transaction, or in one of its
        own, with the fence; without transactions, just after a check of the fence."""
        await self._call("write to", lambda: self._write_fenced(write))

    async def _write_fenced(
        self, write: Callable[[AsyncClientSession | None], Awaitable[Any]]
    ) -> None:
        lease = self._lease
        if lease is None:
            # No lock (a user's own repository adapter calls in without one).
            await write(self._session)
            return
        if not self._facts.transactions or self._client is None:
            await lease.check()
            await write(None)
            return
        if self._session is not None and self._session.in_transaction:
            await lease.check(self._session)
            await write(self._session)
            return
        session = self._client.start_session()
        try:
            await session.start_transaction()
            await lease.check(session)
            await write(session)
            await session.commit_transaction()
        finally:
            with contextlib.suppress(PyMongoError, TimeoutError):
                await asyncio.wait_for(session.end_session(), _CLEAN_UP_SECONDS)

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # Outside any transaction: the marker must outlive the step's own failure. It names the
        # session the step's transaction will use, so a repair can end that transaction if this
        # process dies with it open (the server would keep it, and its locks, for a minute).
        marker: Document = {"direction": direction, "owner": owner, "since": self.now()}
        if self._facts.transactions and self._client is not None:
            self._session = self._client.start_session()
            marker["session"] = self._session.session_id
        await self._fenced(
            lambda session: self._records.update_one(
                {"name": name}, {"$set": {"in_progress": marker}}, upsert=True, session=session
            ),
        )

    async def clear_marker(self, name: str) -> None:
        found = await self._call(
            "read", lambda: self._records.find_one({"name": name}, {"in_progress.session": 1})
        )
        dead = ((found or {}).get("in_progress") or {}).get("session")
        if dead:
            # A dead run's transaction may still be open on the server, holding its writes.
            with contextlib.suppress(PyMongoError):
                await self._db.client.admin.command("killSessions", [dead])
        await self._fenced(lambda session: self._clear_marker(name, session))

    async def _clear_marker(self, name: str, session: AsyncClientSession | None) -> None:
        await self._records.delete_one(
            {"name": name, "in_progress.direction": "up", "created_at": {"$exists": False}},
            session=session,
        )
        await self._records.update_many(
            {"name": name}, {"$unset": {"in_progress": ""}}, session=session
        )

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
        return self._lock(timeout, on_wait)

    @asynccontextmanager
    async def _lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        document = _MongoLease(
            self._db[self._lock_collection], self._lease_seconds, self._renewal_collection
        )
        held = lease_lock(document, timeout, self._lease_seconds, on_wait, self._target.where)
        async with AsyncExitStack() as stack:
            await self._call("lock", lambda: stack.enter_async_context(held))
            self._lease = document
            try:
                yield
            finally:
                self._lease = None

    @property
    def _lock_collection(self) -> str:
        return f"{self._collection_name}_lock"

    @asynccontextmanager
    async def _renewal_collection(self) -> AsyncIterator[AsyncCollection[Document]]:
        """The lock collection through a client of the renewal loop's: a fleet's host shares
        one per server between its targets; a run of its own makes one and closes it."""
        target = self._target
        shared = renewal_client(_server_key(target), target.client, _close_client)
        client = shared or target.client()
        try:
            yield client[target.database][self._lock_collection]
        finally:
            if shared is None:
                await _close_client(client)

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
    """The lease lock's document, in its own collection, claimed by a unique `_id`; its times are
    the server's (`$$NOW`), and so is the verdict that it expired."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        lease_seconds: float,
        renewal_collection: Callable[[], AbstractAsyncContextManager[AsyncCollection[Document]]],
    ) -> None:
        self._collection = collection
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._renewal_collection = renewal_collection
        self._mine: Lease | None = None

    def _claim(self, owner: str, token: str, epoch: Any) -> Document:
        return {
            "owner": {"$literal": owner},
            "token": {"$literal": token},
            "epoch": epoch,
            "since": "$$NOW",
            "until": {"$add": ["$$NOW", self._lease_ms]},
            "released": False,
        }

    async def create(self, owner: str, token: str) -> Lease | None:
        # An upsert on a filter the existing document cannot match: it inserts, or fails on _id.
        try:
            await self._collection.update_one(
                {"_id": _LOCK_ID, "token": token},
                [{"$set": self._claim(owner, token, 1)}],
                upsert=True,
            )
        except DuplicateKeyError:
            return None
        return await self._mine_after(token)

    async def read(self) -> Lease | None:
        found = await self._collection.aggregate(
            [
                {"$match": {"_id": _LOCK_ID}},
                {"$addFields": {"expired": _EXPIRED}},
            ]
        )
        documents = await found.to_list(1)
        return _lease(documents[0]) if documents else None

    async def take_over(self, current: Lease, owner: str, token: str) -> Lease | None:
        # The server checks the expiry again, by its own clock, in the update itself.
        expired = _EXPIRED
        claim = self._claim(owner, token, {"$add": [{"$ifNull": ["$epoch", 0]}, 1]})
        await self._collection.update_one(
            {"_id": _LOCK_ID, "token": current.token},
            [
                {
                    "$set": {
                        key: {"$cond": [expired, value, f"${key}"]} for key, value in claim.items()
                    }
                }
            ],
        )
        return await self._mine_after(token)

    async def _mine_after(self, token: str) -> Lease | None:
        lease = _lease(await self._collection.find_one({"_id": _LOCK_ID, "token": token}))
        self._mine = lease
        return lease

    async def fence(self, mine: Lease) -> None:
        try:
            await self._collection.update_one(
                {"_id": _FENCE_ID, "epoch": {"$lt": mine.version}},
                {"$set": {"epoch": mine.version}},
                upsert=True,
            )
        except DuplicateKeyError:
            raise _taken_over() from None

    async def check(self, session: AsyncClientSession | None = None) -> None:
        """In a transaction, an update of the fence that conflicts with any takeover; else a
        read of it."""
        assert self._mine is not None
        mine = {"_id": _FENCE_ID, "epoch": self._mine.version}
        if session is not None:
            try:
                done = await self._collection.update_one(
                    mine, {"$inc": {"writes": 1}}, session=session
                )
            except OperationFailure as exc:
                if exc.code == _WRITE_CONFLICT:
                    raise _taken_over() from exc
                raise
            held = done.matched_count == 1
        else:
            held = await self._collection.find_one(mine) is not None
        if not held:
            raise _taken_over()

    async def release(self, mine: Lease) -> None:
        # Kept, not deleted, so that the next holder's epoch is above this one.
        await self._collection.update_one(
            {"_id": _LOCK_ID, "token": mine.token},
            {"$set": {"until": _RELEASED_UNTIL, "released": True}},
        )

    @asynccontextmanager
    async def renewer(self) -> AsyncIterator[_MongoRenewer]:
        async with self._renewal_collection() as collection:
            yield _MongoRenewer(collection, self._lease_ms)


class _MongoRenewer:
    def __init__(self, collection: AsyncCollection[Document], lease_ms: int) -> None:
        self._collection = collection
        self._lease_ms = lease_ms

    async def renew(self, mine: Lease) -> Lease | None:
        done = await self._collection.update_one(
            {"_id": _LOCK_ID, "token": mine.token},
            [{"$set": {"until": {"$add": ["$$NOW", self._lease_ms]}}}],
        )
        return mine if done.matched_count == 1 else None


def _server_key(target: MongoTarget) -> str:
    """The target's URL without its database: the same for every database of one server."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(target.url.reveal())._replace(path="/"))


async def _close_client(client: AsyncMongoClient[Document]) -> None:
    with contextlib.suppress(PyMongoError, TimeoutError):
        await asyncio.wait_for(client.close(), _CLEAN_UP_SECONDS)


def _taken_over() -> LockLost:
    return LockLost(
        "lost the migration lock: another deployer took it over, so nothing more is recorded",
        "this run stalled longer than the lease (CLANDESTINO_LOCK_LEASE); check what the"
        " interrupted migration did",
    )


def _lease(document: Document | None) -> Lease | None:
    if document is None:
        return None
    expired = document.get("expired")
    return Lease(
        str(document.get("owner")),
        str(document.get("token")),
        _as_utc(document.get("since")),
        # The holder's epoch: its fence, one above the holder's before it.
        version=document.get("epoch") or 0,
        expired=bool(expired) if expired is not None else None,
        released=bool(document.get("released")),
    )
