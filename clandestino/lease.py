"""A lock with a lease, for stores that have no session-bound locks (MongoDB, Elasticsearch).

The lock is one document. A deployer takes it by creating the document (the store refuses a
second one) or, once the holder's lease has run out, by a compare-and-set on the version it read,
so that of two waiters only one takes it over.

Whether a lease has run out never depends on deployers' clocks agreeing. A store whose server can
judge it says so (`Lease.expired`: MongoDB compares the lease with `$$NOW`, the server's clock, in
the very update that takes it over). Otherwise a waiter judges it by watching: a lease whose
version has not changed for a whole lease, timed on the waiter's own monotonic clock, is dead,
since a live holder renews it (a new version) several times per lease. Only clock *rates* matter.

The holder renews from a thread of its own, with its own connection and event loop, so that a
migration that blocks the event loop (`time.sleep` in `up()`) cannot starve it; every renewal has
a timeout. A holder that has not renewed within the lease, less a margin, stops itself (its run
is cancelled) before any waiter can take over. And since a process can stall as a whole (a
paused VM), the store fences its writes: each record and marker write succeeds only while the
lease is still this run's (see `LeaseDocument.check`), so an ex-holder that wakes up late records
nothing and stops with LockLost (exit 3).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from clandestino.errors import DatabaseUnavailable, LockTimeout
from clandestino.identity import deployer_identity
from clandestino.store import LockHolder, WaitCallback

__all__ = [
    "Lease",
    "LeaseDocument",
    "LockLost",
    "RenewalHost",
    "Renewer",
    "lease_lock",
    "renewal_client",
    "renewal_host",
]

C = TypeVar("C")

# How often a waiter looks at the lock document again.
_POLL_SECONDS = 0.2
# Renewals per lease, and the part of the lease a holder keeps back: it stops itself once it has
# gone (1 - _MARGIN) of a lease without a renewal, well before anyone may take over.
_RENEWALS_PER_LEASE = 4
_MARGIN = 0.25


class LockLost(DatabaseUnavailable):
    """Another deployer took the lock over, or this run could not keep its lease."""


@dataclass(frozen=True)
class Lease:
    """The lock document's content. `version` is the store's compare-and-set token; `expired`
    the server's own verdict where the store can ask for one, None where the waiter must watch."""

    owner: str
    token: str
    since: datetime | None = None
    version: Any = None
    expired: bool | None = None
    # Left by a holder that finished: free to take at once, nobody to report.
    released: bool = False


class Renewer(Protocol):
    async def renew(self, mine: Lease) -> Lease | None:
        """Extend our own lease; the lease (new version) if it is still ours, else None."""
        ...


class LeaseDocument(Protocol):
    async def create(self, owner: str, token: str) -> Lease | None:
        """Create the lock document and return it (version included); None if one exists."""
        ...

    async def read(self) -> Lease | None: ...

    async def take_over(self, current: Lease, owner: str, token: str) -> Lease | None:
        """Swap `current` (as read, version included) for a new lease of ours; None if it changed
        meanwhile (or, where the server judges, if it has not expired after all)."""
        ...

    async def fence(self, mine: Lease) -> None:
        """Make `mine` the only holder whose writes the store accepts from now on; raise LockLost
        if a newer holder already did."""
        ...

    async def check(self) -> None:
        """Raise LockLost unless the lease is still this run's (called before each write)."""
        ...

    async def release(self, mine: Lease) -> None:
        """Give the lock up, if it is still ours."""
        ...

    def renewer(self) -> AbstractAsyncContextManager[Renewer]:
        """A renewer with a connection of its own, opened and used in the renewal thread."""
        ...


@asynccontextmanager
async def lease_lock(
    document: LeaseDocument, timeout: float, lease_seconds: float, on_wait: WaitCallback, where: str
) -> AsyncIterator[None]:
    """Hold the lock for the block; raise LockTimeout after `timeout`, LockLost if it is lost."""
    sent = time.monotonic()
    mine = await _acquire(document, timeout, lease_seconds, on_wait, where)
    state = _Holding(mine, valid_until=sent + lease_seconds)
    owner_task = asyncio.current_task()
    renewal = _Renewal(document, state, lease_seconds, asyncio.get_running_loop(), owner_task)
    try:
        await document.fence(mine)
        renewal.start()
        yield
    except asyncio.CancelledError:
        if state.lost and owner_task is not None:
            owner_task.uncancel()
            raise _lost(state, lease_seconds, where) from state.unreachable
        raise
    finally:
        renewal.stop()
        if not state.lost:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(document.release(state.lease), 2)


def _lost(state: _Holding, lease_seconds: float, where: str) -> LockLost:
    if state.unreachable is not None:
        return LockLost(
            f"lost the connection to {where}: the migration lock could not be renewed"
            f" within its lease ({lease_seconds:g} s, CLANDESTINO_LOCK_LEASE):"
            f" {type(state.unreachable).__name__}",
            "check that the server is up and reachable, then what the interrupted migration did",
        )
    return LockLost(
        f"lost the migration lock on {where}: another deployer took it over",
        f"this run stalled longer than the lease ({lease_seconds:g} s, "
        "CLANDESTINO_LOCK_LEASE); check what the interrupted migration did",
    )


@dataclass
class _Holding:
    lease: Lease
    # Monotonic time by which the last confirmed renewal runs out (it was sent before this).
    valid_until: float
    lost: bool = False
    # Why the last renewal failed, while the server cannot be reached; None once one succeeds.
    unreachable: Exception | None = None


async def _acquire(
    document: LeaseDocument, timeout: float, lease_seconds: float, on_wait: WaitCallback, where: str
) -> Lease:
    deadline = time.monotonic() + timeout
    told = False
    # The version being watched and when this waiter first saw it (monotonic).
    watched: tuple[Any, float] | None = None
    while True:
        token = uuid.uuid4().hex
        created = await document.create(deployer_identity(), token)
        if created is not None:
            return created
        current = await document.read()
        if current is None:
            continue
        now = time.monotonic()
        if watched is None or watched[0] != current.version:
            watched = (current.version, now)
        expired = current.released or (
            current.expired if current.expired is not None else now - watched[1] >= lease_seconds
        )
        if expired:
            taken = await document.take_over(current, deployer_identity(), token)
            if taken is not None:
                if not current.released:
                    on_wait(LockHolder(current.owner, current.since, taken_over=True))
                return taken
            continue
        if not told:
            on_wait(LockHolder(current.owner, current.since))
            told = True
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"the migration lock on {where} stayed held by {current.owner} "
                f"for more than {timeout:g} s",
                "wait for that deployer to finish, or raise CLANDESTINO_LOCK_TIMEOUT",
            )
        await asyncio.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


class RenewalHost:
    """One renewal thread and event loop for a whole fleet run, with one renewal client per
    server: the renewals of the K targets held at once run as tasks on it, instead of a thread,
    a loop and a client (its own connections) per target. A migration blocking the run's loop
    still cannot starve it: it is a thread of its own all the same."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}
        self._started = threading.Lock()

    def submit(self, work: Any) -> concurrent.futures.Future[Any]:
        with self._started:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="clandestino-leases", daemon=True
                )
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def client(self, key: str, make: Callable[[], C], close: Callable[[C], Awaitable[None]]) -> C:
        """The host's client for `key` (a server), made on first use; call in the host's loop."""
        if key not in self._clients:
            self._clients[key] = (make(), close)
        client: C = self._clients[key][0]
        return client

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close_clients() -> None:
            clients, self._clients = list(self._clients.values()), {}
            for client, close in clients:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(close(client), 2)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_clients(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None


# The fleet run's host, seen by the locks its targets take (each worker task inherits it).
_HOST: contextvars.ContextVar[RenewalHost | None] = contextvars.ContextVar(
    "clandestino_renewal_host", default=None
)


@contextlib.contextmanager
def renewal_host() -> Any:
    """Renew every lease taken within the block on one shared host, closed on leaving."""
    host = RenewalHost()
    token = _HOST.set(host)
    try:
        yield host
    finally:
        _HOST.reset(token)
        host.close()


def renewal_client(
    key: str, make: Callable[[], C], close: Callable[[C], Awaitable[None]]
) -> C | None:
    """In a renewal running on a fleet's host: that host's client for `key`, shared by every
    target on the server; None in a run of its own (the renewer then makes and closes its own)."""
    host = _HOST.get()
    return host.client(key, make, close) if host is not None else None


class _Renewal:
    """Renews the lease from a thread with its own event loop, which a blocked run cannot stop
    (a fleet's shared `RenewalHost`, or a thread for this lock alone)."""

    def __init__(
        self,
        document: LeaseDocument,
        state: _Holding,
        lease_seconds: float,
        owner_loop: asyncio.AbstractEventLoop,
        owner_task: asyncio.Task[Any] | None,
    ) -> None:
        self._document = document
        self._state = state
        self._lease = lease_seconds
        self._owner_loop = owner_loop
        self._owner_task = owner_task
        self._stopping = threading.Event()
        self._host = _HOST.get()
        self._hosted: concurrent.futures.Future[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="clandestino-lease", daemon=True)

    def start(self) -> None:
        if self._host is not None:
            self._hosted = self._host.submit(self._renew_until_stopped())
        else:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._hosted is not None:
            with contextlib.suppress(Exception):
                self._hosted.result(timeout=self._lease / _RENEWALS_PER_LEASE + 2)
        elif self._thread.is_alive():
            self._thread.join(timeout=self._lease / _RENEWALS_PER_LEASE + 2)

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(self._renew_until_stopped())

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` or until stopped; True if stopped."""
        step = 0.05
        until = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(step, left))
        return True

    async def _renew_until_stopped(self) -> None:
        if self._host is not None:
            # This task's own context: the store's renewer asks it for the host's client.
            _HOST.set(self._host)
        interval = self._lease / _RENEWALS_PER_LEASE
        state = self._state
        try:
            opened = self._document.renewer()
            renewer = await asyncio.wait_for(opened.__aenter__(), self._lease * (1 - _MARGIN))
        except Exception as exc:
            state.unreachable = exc
            renewer = None
            opened = None
        try:
            while not await self._sleep(interval):
                sent = time.monotonic()
                try:
                    if renewer is None:
                        raise ConnectionError("no connection for the lease's renewal")
                    # Up to the moment it must give up: a slow answer still counts.
                    give_up_at = state.valid_until - self._lease * _MARGIN
                    patience = max(interval, give_up_at - time.monotonic())
                    renewed = await asyncio.wait_for(renewer.renew(state.lease), patience)
                except Exception as exc:
                    # A passing fault: try again at the next beat, while the lease still runs.
                    state.unreachable = exc
                else:
                    if renewed is None:
                        state.unreachable = None
                        self._give_up()
                        return
                    state.unreachable = None
                    state.lease = renewed
                    state.valid_until = sent + self._lease
                if time.monotonic() >= state.valid_until - self._lease * _MARGIN:
                    self._give_up()
                    return
        finally:
            if opened is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(opened.__aexit__(None, None, None), 2)

    def _give_up(self) -> None:
        """The lease is lost or about to run out: stop the run before anyone can take over."""
        self._state.lost = True
        if self._owner_task is not None and not self._stopping.is_set():
            with contextlib.suppress(RuntimeError):
                self._owner_loop.call_soon_threadsafe(self._owner_task.cancel)
