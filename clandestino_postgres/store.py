"""The control table in PostgreSQL.

One connection, the run's working connection, carries the migrations, their records and the
lock: a session-level advisory lock keyed on the control table's schema and name. The lock lives
exactly as long as the session that commits, so a session that ends mid-run (terminated, timed
out by the server, dropped by a pooler or a NAT) takes the lock and the step's open transaction
with it: the step cannot commit after the lock is gone, and the next deployer finds it undone.

A step whose work cannot commit with its record (`transactional = False`, or a migration on a
connection of its own) leaves an in-progress marker, committed before it starts, in the record's
row; the next run refuses to go past it until `cdt --repair`.

Every record write is fenced: it changes a row only while the working connection's session still
holds the lock (`RecordFence`), so a write made through another connection (the psycopg cursor's)
cannot record anything once the run has lost its lock.

Each step's transaction waits at most `lock_timeout` for a lock (timeouts.py): a step that
gives up is rolled back and tried again by the engine, and a watcher (blocking.py) names who
held the lock. Steps commit without waiting for the disk; the run's last commit waits for it,
which makes every earlier one durable with it: one WAL flush per run, not one per migration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import asyncpg

from clandestino.errors import (
    ClandestinoError,
    DatabaseUnavailable,
    LockTimeout,
    MigrationFileError,
)
from clandestino.legacy import StoreRepository
from clandestino.store import AppliedMigration, LockConflict, LockHolder, WaitCallback
from clandestino_postgres.blocking import BlockWatch
from clandestino_postgres.connect import ConnectionTarget, database_error
from clandestino_postgres.cursor import CursorSession
from clandestino_postgres.infra import PostgresInfra
from clandestino_postgres.records import (
    GENERATIONS,
    MARKER_COLUMNS,
    applied_query,
    describe,
    quoted_table,
    to_applied,
)
from clandestino_postgres.statements import OneStatementAtATime
from clandestino_postgres.timeouts import (
    LOCK_ATTEMPTS,
    LOCK_TIMEOUT,
    TrafficSettings,
    local_settings,
)

if TYPE_CHECKING:
    from asyncpg import Connection

    from clandestino_postgres.pool import ConnectionSource

__all__ = ["PostgresStore", "RecordFence"]

T = TypeVar("T")
ParamStyle = Literal["asyncpg", "psycopg"]

# The lock's key: the schema (the search path's first when none is set) and the table name.
_KEY = "hashtextextended(coalesce($1::text, current_schema()) || '.' || $2::text, 0)"
# pg_locks shows a bigint advisory key as two 32-bit halves.
_KEY_MATCHES = (
    "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.classid::bigint = ({key}::bigint >> 32) & 4294967295"
    " AND l.objid::bigint = {key}::bigint & 4294967295"
)
_HOLDER = f"""
SELECT a.pid, a.application_name, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE {_KEY_MATCHES.format(key="$1")}
LIMIT 1
"""
# Indexes a failed CREATE INDEX CONCURRENTLY left invalid, in the control table's schema and the
# search path's; not those a build in progress (someone else's) has yet to finish.
_INVALID_INDEXES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND n.nspname = ANY(current_schemas(false) || coalesce($1::name, current_schema()))
  AND i.indexrelid NOT IN (
    SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid IS NOT NULL)
ORDER BY 1
"""
_INVALID_PREFIX = "invalid index "


@dataclass(frozen=True)
class RecordFence:
    """Record writes that take effect only while the session `pid` holds the lock `key`.

    Each statement checks pg_locks in the same statement that writes, so it works from any
    connection to the database: from the working connection itself, where it cannot fail while
    the session lives, and from another one (the psycopg cursor's), whose transaction carries
    the record. A statement that changed no row means the lock is gone: `check` raises, and the
    caller's transaction must not commit.
    """

    table: str
    pid: int
    key: int

    @property
    def held(self) -> str:
        """A boolean SQL expression: whether the session still holds the lock."""
        # pid and key are integers we read from the server, so they are written in as literals.
        held = _KEY_MATCHES.format(key=int(self.key))
        return f"EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = {int(self.pid)} AND {held})"

    def insert(self, style: ParamStyle = "asyncpg") -> str:
        """Insert the record of a step that left no marker: (name, checksum, duration_ms)."""
        p = _placeholders(style, 3)
        return (
            f"INSERT INTO {self.table} (migration_name, checksum, duration_ms)"
            f" SELECT {p[0]}, {p[1]}, {p[2]} WHERE {self.held}"
        )

    def finish(self, style: ParamStyle = "asyncpg") -> str:
        """Turn the up() marker into the record: (checksum, duration_ms, name)."""
        p = _placeholders(style, 3)
        return (
            f"UPDATE {self.table} SET checksum = {p[0]}, duration_ms = {p[1]},"
            " created_on = DEFAULT, in_progress = NULL, started_by = NULL, started_at = NULL"
            f" WHERE migration_name = {p[2]} AND in_progress = 'up' AND {self.held}"
        )

    def delete(self, style: ParamStyle = "asyncpg") -> str:
        """Remove the record of a step rolled back: (name,)."""
        p = _placeholders(style, 1)
        return f"DELETE FROM {self.table} WHERE migration_name = {p[0]} AND {self.held}"

    def record(
        self, name: str, checksum: str | None, duration_ms: int, style: ParamStyle = "asyncpg"
    ) -> tuple[str, tuple[Any, ...]]:
        """The statement and arguments that record `name` applied, when it left no marker."""
        return self.insert(style), (name, checksum, duration_ms)

    @property
    def drain_shared(self) -> str:
        """Taken by a transaction on another connection before its fenced write, and held until
        it ends: the next holder of the lock waits for it (`drain`) before reading the records.

        Without it, a write that passed the fence while the holder's session was ending (pg_locks
        still shows a terminated session's lock for a moment) could commit after the next holder
        has read the records, and that holder would run the step again.
        """
        return f"SELECT pg_advisory_xact_lock_shared({_drain_key(self.key)})"

    def check(self, changed: int, name: str) -> None:
        """Raise when a fenced write changed `changed` != 1 rows: the lock is no longer ours."""
        if changed != 1:
            raise lock_lost(name)


def _drain_key(key: int) -> str:
    # The two-integer form: its own space in pg_locks (objsubid 2), apart from the bigint key.
    return f"{(key >> 32) & 0x7FFFFFFF}, {key & 0x7FFFFFFF}"


def lock_lost(name: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"the migration lock was lost (its session ended) before {name} was recorded;"
        " nothing of it was recorded",
        "check the server's idle_session_timeout and idle_in_transaction_session_timeout and"
        " anything that ends idle connections, then run again",
    )


def _placeholders(style: ParamStyle, count: int) -> list[str]:
    return [f"${n}" if style == "asyncpg" else "%s" for n in range(1, count + 1)]


def _rows_changed(status: str) -> int:
    """The row count of a command tag such as 'INSERT 0 1' or 'UPDATE 1'."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    locking = True
    runs_outside_transactions = True
    # A step on the run's connection commits with its record: only the others need a marker.
    marks_only_steps_apart_from_records = True
    # A failed step's transaction is rolled back whole, work and record: no clean-up down().
    rolls_back_failed_steps = True

    def __init__(
        self,
        target: ConnectionTarget,
        schema: str | None,
        table: str,
        read_only: bool,
        traffic: TrafficSettings | None = None,
        connections: ConnectionSource | None = None,
    ) -> None:
        self._target = target
        # Where the run's connection comes from: a fleet's pool, else a connection of its own.
        self._connections = connections
        self._schema = schema
        self._table_name = table
        self._table = quoted_table(schema, table)
        self._read_only = read_only
        self._connection: Connection | None = None
        self._fence: RecordFence | None = None
        # Names whose up() marker this run wrote: their record replaces the marker.
        self._marked: set[str] = set()
        self._traffic = traffic or TrafficSettings()
        # The lock_timeout of the step about to run: the migration's own, or the setting.
        self._step_lock_timeout = self._traffic.lock_timeout
        self._watch = BlockWatch(target.connect)
        # The psycopg connection of get_cursor(), with the same session timeouts as ours.
        self._cursors = CursorSession(
            target,
            local_settings(
                self._traffic.lock_timeout,
                self._traffic.statement_timeout,
                flush=True,
                scope="SESSION",
            ),
        )
        # Whether a commit of this run returned before reaching the disk.
        self._unflushed = False
        self.description = describe(target.masked, self._table)

    async def open(self) -> None:
        if self._connections is not None:
            self._connection = await self._connections.acquire()
        else:
            self._connection = await self._target.connect()

    async def aclose(self) -> None:
        await self._watch.aclose()
        await self._cursors.aclose()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            if self._connections is not None:
                # After lock() let go of the lock: the pool resets the session as it takes it.
                await self._connections.release(connection)
            else:
                await _close_quietly(connection)

    @property
    def _conn(self) -> Connection:
        assert self._connection is not None, "the store is not open"
        return self._connection

    @property
    def fence(self) -> RecordFence:
        """The fence of this run's record writes; only while the lock is held."""
        assert self._fence is not None, "the lock is not held"
        return self._fence

    async def _db(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise database_error(exc, self._target, doing) from exc

    async def ensure(self) -> None:
        await self._db("create", self._ensure)

    async def _ensure(self) -> None:
        if self._schema:
            await self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        # The original's columns, so a table made by it is adopted in place, plus ours.
        ours = ", ".join(f"{name} {kind}" for name, kind in MARKER_COLUMNS.items())
        await self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " id serial PRIMARY KEY,"
            " migration_name varchar(255) UNIQUE NOT NULL,"
            f" created_on timestamp NOT NULL DEFAULT current_timestamp, {ours})"
        )
        present = await self._conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2",
            self._schema,
            self._table_name,
        )
        missing = [name for name in MARKER_COLUMNS if name not in {r[0] for r in present}]
        if missing:
            added = ", ".join(
                f"ADD COLUMN IF NOT EXISTS {name} {MARKER_COLUMNS[name]}" for name in missing
            )
            await self._conn.execute(f"ALTER TABLE {self._table} {added}")

    async def applied(self) -> list[AppliedMigration]:
        return await self._db("read", self._applied)

    async def _applied(self) -> list[AppliedMigration]:
        for generation in range(len(GENERATIONS)):
            try:
                rows = await self._conn.fetch(applied_query(self._table, generation))
            except asyncpg.UndefinedTableError:
                return []
            except asyncpg.UndefinedColumnError:
                continue  # a table not adopted yet: read what it has
            return [to_applied(row) for row in rows]
        raise AssertionError("the original's own columns are read as they are")

    async def record(self, name: str, checksum: str | None, duration_ms: int) -> None:
        fence = self.fence
        if self._cursors.in_use:
            # The step worked through get_cursor(): its record joins that transaction.
            statement = self.record_statement(name, checksum, duration_ms, style="psycopg")
            await self._cursors.write((fence.drain_shared, ()))
            await self._cursors.record(statement, lambda changed: fence.check(changed, name))
        else:
            sql, args = self.record_statement(name, checksum, duration_ms)
            status = await self._db("write to", lambda: self._conn.execute(sql, *args))
            fence.check(_rows_changed(status), name)
        self._marked.discard(name)

    def record_statement(
        self, name: str, checksum: str | None, duration_ms: int, style: ParamStyle = "asyncpg"
    ) -> tuple[str, tuple[Any, ...]]:
        """The fenced statement that records `name` (replacing its marker if this run left
        one), for any connection's transaction; pass its row count to `fence.check`."""
        if name in self._marked:
            return self.fence.finish(style), (checksum, duration_ms, name)
        return self.fence.record(name, checksum, duration_ms, style)

    async def remove(self, name: str) -> None:
        fence = self.fence
        if self._cursors.in_use:
            # The step's down() worked through get_cursor(): its record goes with that work.
            await self._cursors.write((fence.drain_shared, ()))
            changed = await self._cursors.write((fence.delete(style="psycopg"), (name,)))
        else:
            status = await self._db("write to", lambda: self._conn.execute(fence.delete(), name))
            changed = _rows_changed(status)
        if changed == 0 and await self._db("read", self._holds_lock):
            return  # nothing to remove (the original's repository interface allows that)
        fence.check(changed, name)
        self._marked.discard(name)

    async def _holds_lock(self) -> bool:
        return bool(await self._conn.fetchval(f"SELECT {self.fence.held}"))

    async def update_checksum(self, name: str, checksum: str) -> None:
        await self._db(
            "write to",
            lambda: self._conn.execute(
                f"UPDATE {self._table} SET checksum = $1 WHERE migration_name = $2", checksum, name
            ),
        )

    async def mark_started(self, name: str, direction: str, owner: str) -> None:
        # Outside any transaction, on the connection that holds the lock: the marker commits
        # before the step starts and outlives whatever happens to the step.
        if direction == "up":
            sql = (
                f"INSERT INTO {self._table} (migration_name, in_progress, started_by, started_at)"
                " VALUES ($1, 'up', $2, now())"
            )
        else:
            sql = (
                f"UPDATE {self._table} SET in_progress = 'down', started_by = $2,"
                " started_at = now() WHERE migration_name = $1"
            )
        try:
            await self._conn.execute(sql, name, owner)
        except asyncpg.UndefinedColumnError:
            # A rollback on a table no run of this version has adopted yet.
            await self.ensure()
            await self._db("write to", lambda: self._conn.execute(sql, name, owner))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise database_error(exc, self._target, "write to") from exc
        if direction == "up":
            self._marked.add(name)

    async def clear_marker(self, name: str) -> None:
        await self._db("write to", lambda: self._clear(name))
        self._marked.discard(name)

    async def _clear(self, name: str) -> None:
        try:
            async with self._conn.transaction():
                await self._conn.execute(
                    f"DELETE FROM {self._table} WHERE migration_name = $1 AND in_progress = 'up'",
                    name,
                )
                await self._conn.execute(
                    f"UPDATE {self._table} SET in_progress = NULL, started_by = NULL,"
                    " started_at = NULL WHERE migration_name = $1 AND in_progress = 'down'",
                    name,
                )
        except asyncpg.UndefinedColumnError:
            return  # a table without marker columns has no markers

    async def leftovers(self) -> list[str]:
        """Repair: indexes a failed concurrent build left invalid, as 'invalid index s.name'."""
        rows = await self._db("read", lambda: self._conn.fetch(_INVALID_INDEXES, self._schema))
        return [f"{_INVALID_PREFIX}{row['name']}" for row in rows]

    async def drop_leftover(self, leftover: str) -> None:
        # The name came from the server quoted by format('%I.%I'), never from the user.
        name = leftover.removeprefix(_INVALID_PREFIX)
        await self._db(
            "write to", lambda: self._conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        )

    def prepare_step(self, migration: object) -> None:
        """Take the migration's own `lock_timeout` (seconds) for its step, if it sets one; hand
        a step outside a transaction a connection that sends statements one at a time."""
        infra = getattr(migration, "infra", None)
        outside = not getattr(migration, "transactional", True)
        if outside and isinstance(infra, PostgresInfra) and infra.bound_connection() is not None:
            splitting: Any = OneStatementAtATime(self._conn)
            bound = PostgresInfra.bound_to(splitting, self._cursors)
            migration.infra = bound  # type: ignore[attr-defined]
        own = getattr(migration, "lock_timeout", None)
        if own is None:
            self._step_lock_timeout = self._traffic.lock_timeout
        elif isinstance(own, int | float) and not isinstance(own, bool) and own >= 0:
            self._step_lock_timeout = float(own)
        else:
            raise MigrationFileError(
                f"{type(migration).__module__}: lock_timeout = {own!r} is not a number of seconds",
                "set it to a number like 30, or 0 for no limit",
            )

    def lock_conflict(self, error: BaseException) -> LockConflict | None:
        """The step gave up waiting for a lock (SQLSTATE 55P03): who held it, and the bounds."""
        lock_not_available = isinstance(error, asyncpg.LockNotAvailableError)
        if not (lock_not_available or self._cursors.lock_not_available(error)):
            return None
        traffic = self._traffic
        return LockConflict(
            blockers=[blocker.describe() for blocker in self._watch.seen],
            lock_timeout=self._step_lock_timeout,
            attempts=traffic.attempts,
            retry_window=traffic.retry_window,
            backoff=traffic.backoff,
            hint=f"end that session or let it finish, or raise {LOCK_TIMEOUT} (or the"
            f" migration's lock_timeout) or {LOCK_ATTEMPTS}",
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        transaction = await self._db("start a transaction on", self._begin)
        committed = False
        # Every step's transaction, whichever client its migration uses, starts here: the
        # place where its lock_timeout, statement_timeout and commit mode are set.
        settings = local_settings(
            self._step_lock_timeout, self._traffic.statement_timeout, self._traffic.flush_each
        )
        try:
            await self._db("configure", lambda: self._conn.execute(settings))
            self._watch.start(self._waiting_pids, self._step_lock_timeout)
            try:
                # The psycopg connection's transaction (get_cursor()) runs the same settings and
                # commits, with the step's record, as this block ends.
                async with self._cursors.step(settings):
                    yield
            finally:
                await self._watch.stop()
            # From here commits may have returned before reaching the disk, the psycopg
            # connection's included: the run's last commit flushes them (see _make_durable).
            self._unflushed = self._unflushed or not self._traffic.flush_each
            await self._db("commit to", transaction.commit)
            committed = True
        finally:
            if not committed:
                await _rollback_quietly(transaction)

    def _waiting_pids(self) -> list[int]:
        """The sessions a step may wait in: the run's connection, and get_cursor()'s."""
        cursors = self._cursors.pid
        return [self._conn.get_server_pid(), *([] if cursors is None else [cursors])]

    async def _make_durable(self) -> None:
        """Wait until every commit of the run is on disk (and on synchronous standbys).

        A commit that waits for the disk flushes the WAL up to its own commit record, which lies
        after every earlier commit of the run: the WAL is one stream for the whole server, so
        that covers the commits made on the psycopg connection of get_cursor() too, which all
        returned before this one began. Only a transaction that wrote to the WAL waits for it,
        so this one rewrites a control row as it is (or adds one and takes it away).
        """
        if not self._unflushed:
            return
        table = self._table

        async def flush() -> None:
            async with self._conn.transaction():
                await self._conn.execute("SET LOCAL synchronous_commit = on")
                status = await self._conn.execute(
                    f"UPDATE {table} SET created_on = created_on"
                    f" WHERE id = (SELECT max(id) FROM {table})"
                )
                if _rows_changed(status) == 0:
                    await self._conn.execute(
                        f"INSERT INTO {table} (migration_name) VALUES ('(flush)');"
                        f" DELETE FROM {table} WHERE migration_name = '(flush)'"
                    )

        await self._db("commit to", flush)
        self._unflushed = False

    async def _begin(self) -> Any:
        # transaction() itself raises when the session is already gone.
        transaction = self._conn.transaction()
        await transaction.start()
        return transaction

    @asynccontextmanager
    async def lock(self, timeout: float, on_wait: WaitCallback) -> AsyncIterator[None]:
        key = await self._db("lock", lambda: self._acquire(timeout, on_wait))
        self._fence = RecordFence(self._table, self._conn.get_server_pid(), key)
        done = False
        try:
            # The session's own timeouts, for what runs outside a step's transaction (steps with
            # `transactional = False`, the control table's DDL); each step sets its own.
            traffic = self._traffic
            session = local_settings(
                traffic.lock_timeout, traffic.statement_timeout, flush=True, scope="SESSION"
            )
            await self._db("configure", lambda: self._conn.execute(session))
            yield
            await self._make_durable()
            done = True
        finally:
            self._fence = None
            if not done:
                # What committed before the failure is kept, so it is made durable too.
                with contextlib.suppress(ClandestinoError):
                    await self._make_durable()
            await self._unlock(key)

    async def _acquire(self, timeout: float, on_wait: WaitCallback) -> int:
        connection = self._conn
        row = await connection.fetchrow(
            f"SELECT pg_try_advisory_lock(k) AS taken, k FROM (SELECT {_KEY} AS k) AS key",
            self._schema,
            self._table_name,
        )
        assert row is not None
        key = int(row["k"])
        if row["taken"]:
            await self._drain(key)
            return key
        on_wait(await self._holder(key))
        # Wait in the server, which wakes us the moment the holder lets go. A session lock taken
        # inside a transaction outlives it; SET LOCAL keeps the run's own lock_timeout intact.
        waiting = f"SET LOCAL lock_timeout = {max(1, round(timeout * 1000))}"
        try:
            async with connection.transaction():
                await connection.execute(waiting)
                await connection.execute("SELECT pg_advisory_lock($1)", key)
        except asyncpg.LockNotAvailableError as exc:
            holder = await self._holder(key)
            raise LockTimeout(
                f"the migration lock on {self._target.where} stayed held by {holder.description}"
                f" for more than {timeout:g} s",
                "wait for that deployer to finish, or raise CLANDESTINO_LOCK_TIMEOUT",
            ) from exc
        await self._drain(key)
        return key

    async def _drain(self, key: int) -> None:
        """Wait for a record write of an earlier holder still in flight on another connection
        (see RecordFence.drain_shared); taken and let go in one statement."""
        await self._conn.execute(f"SELECT pg_advisory_xact_lock({_drain_key(key)})")

    async def _unlock(self, key: int) -> None:
        connection = self._connection
        if connection is None or connection.is_closed():
            return  # the server let go of the lock with the session
        try:
            await asyncio.wait_for(connection.execute("SELECT pg_advisory_unlock($1)", key), 5)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            # Ending the session frees the lock when the unlock cannot be sent.
            connection.terminate()

    async def _holder(self, key: int) -> LockHolder:
        holder = await self._conn.fetchrow(_HOLDER, key)
        if holder is None:
            return LockHolder("another deployer (it just let go)")
        name = holder["application_name"] or "no application_name"
        return LockHolder(f"pid {holder['pid']} ({name})", holder["backend_start"])

    def bind_infra(self, declared: object) -> object | None:
        if isinstance(declared, PostgresInfra) and declared.targets_configured_database():
            return PostgresInfra.bound_to(self._conn, self._cursors)
        return None

    def connection_lost(self, error: BaseException) -> ClandestinoError | None:
        lost = (
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.PostgresConnectionError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.IdleSessionTimeoutError,
            asyncpg.IdleInTransactionSessionTimeoutError,
            OSError,
        )
        # asyncpg raises InterfaceError("connection is closed") on a connection that died while
        # idle; InterfaceError also means misuse, so only with the run's connection closed.
        closed = (
            isinstance(error, asyncpg.InterfaceError)
            and self._connection is not None
            and self._connection.is_closed()
        )
        if isinstance(error, lost) or closed:
            return database_error(error, self._target, "talk to")
        return self._cursors.connection_lost(error)

    def legacy_repository(self) -> object:
        return StoreRepository(self)


async def _rollback_quietly(transaction: Any) -> None:
    # When the connection is gone, the server rolls the transaction back by itself.
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        await transaction.rollback()


async def _close_quietly(connection: Connection) -> None:
    try:
        await asyncio.wait_for(connection.close(), 5)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        connection.terminate()
