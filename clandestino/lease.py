"""A lock with a lease, for stores that have no session-bound locks (MongoDB, Elasticsearch).

The lock is one document. A deployer takes it by creating the document (the store refuses a
second one), renews its lease while it runs, and deletes it when done. A holder that died stops
renewing; once its lease has run out, a waiter replaces the document with a compare-and-set on
the version it read, so that of two waiters only one takes it over. A holder that finds its
lease taken over (it stalled longer than the lease) has lost the lock: its run is cancelled.

Each store supplies the five primitives of `LeaseDocument`; the waiting, takeover, renewal and
release are here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from clandestino.errors import DatabaseUnavailable, LockTimeout
from clandestino.identity import deployer_identity
from clandestino.store import LockHolder, WaitCallback

__all__ = ["Lease", "LeaseDocument", "LockLost", "lease_lock"]

# How often a waiter looks at the lock document again.
_POLL_SECONDS = 0.2


class LockLost(DatabaseUnavailable):
    """Another deployer took the lock over while this run still held it."""


@dataclass(frozen=True)
class Lease:
    """The lock document's content. `version` is the store's compare-and-set token."""

    owner: str
    token: str
    since: datetime
    until: datetime
    version: Any = None


class LeaseDocument(Protocol):
    def now(self) -> datetime:
        """The time on the server's clock, so that deployers' clocks need not agree."""
        ...

    async def create(self, lease: Lease) -> Lease | None:
        """Create the lock document and return it (version included); None if one exists."""
        ...

    async def read(self) -> Lease | None: ...

    async def replace(self, current: Lease, new: Lease) -> Lease | None:
        """Swap `current` (as read, version included) for `new`; None if it changed meanwhile."""
        ...

    async def renew(self, mine: Lease, until: datetime) -> Lease | None:
        """Extend our own lease; None if the document is no longer ours."""
        ...

    async def delete(self, mine: Lease) -> None:
        """Remove the document if it is still ours."""
        ...


@asynccontextmanager
async def lease_lock(
    document: LeaseDocument, timeout: float, lease_seconds: float, on_wait: WaitCallback, where: str
) -> AsyncIterator[None]:
    """Hold the lock for the block; raise LockTimeout after `timeout`, LockLost if it is lost."""
    mine = await _acquire(document, timeout, timedelta(seconds=lease_seconds), on_wait, where)
    state = _Holding(mine)
    owner_task = asyncio.current_task()
    renewer = asyncio.create_task(_keep_renewing(document, state, lease_seconds, owner_task))
    try:
        yield
    except asyncio.CancelledError:
        if state.lost and owner_task is not None:
            owner_task.uncancel()
            if state.unreachable is not None:
                raise LockLost(
                    f"lost the connection to {where}: the migration lock could not be renewed"
                    f" before its lease ran out ({lease_seconds:g} s, CLANDESTINO_LOCK_LEASE):"
                    f" {type(state.unreachable).__name__}",
                    "check that the server is up and reachable, then what the interrupted"
                    " migration did",
                ) from state.unreachable
            raise LockLost(
                f"lost the migration lock on {where}: another deployer took it over",
                f"this run stalled longer than the lease ({lease_seconds:g} s, "
                "CLANDESTINO_LOCK_LEASE); check what the interrupted migration did",
            ) from None
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        if not state.lost:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(document.delete(state.lease), 2)


@dataclass
class _Holding:
    lease: Lease
    lost: bool = False
    # Why the last renewal failed, while the server cannot be reached; None once one succeeds.
    unreachable: Exception | None = None


async def _acquire(
    document: LeaseDocument, timeout: float, lease: timedelta, on_wait: WaitCallback, where: str
) -> Lease:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        now = document.now()
        mine = Lease(deployer_identity(), uuid.uuid4().hex, now, now + lease)
        created = await document.create(mine)
        if created is not None:
            return created
        current = await document.read()
        if current is None:
            continue
        if current.until <= now:
            taken = await document.replace(current, mine)
            if taken is not None:
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


async def _keep_renewing(
    document: LeaseDocument,
    state: _Holding,
    lease_seconds: float,
    owner_task: asyncio.Task[Any] | None,
) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            until = document.now() + timedelta(seconds=lease_seconds)
            renewed = await document.renew(state.lease, until)
            state.unreachable = None
        except Exception as exc:
            # A passing fault: try again at the next beat, while the lease still runs.
            state.unreachable = exc
            if document.now() < state.lease.until:
                continue
            renewed = None
        if renewed is None:
            state.lost = True
            if owner_task is not None:
                owner_task.cancel()
            return
        state.lease = replace(renewed)
