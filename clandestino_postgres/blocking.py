"""Who holds the lock a migration waits for: pg_blocking_pids, seen from a second connection.

While a step waits for a lock its own connection is busy waiting, so a watcher asks on another
connection, opened only when some step has been running for half its lock_timeout. What it saw
last is what a step that then timed out reports.

A blocker's query is shown by its start only, cut before the first literal: queries carry
literals, and literals can be secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

__all__ = ["BlockWatch", "Blocker", "query_start"]

_QUERY_CHARS = 60
# Where a literal (or an identifier that might hold one) begins: a quote, a dollar quote, E'...
_LITERAL = re.compile(r"""['"$]|\b[eEbBxXuU]&?'|\d""")

_BLOCKERS = """
SELECT a.pid, a.application_name, a.state,
       extract(epoch FROM now() - coalesce(a.state_change, a.backend_start))::float8 AS seconds,
       left(a.query, 400) AS query
FROM unnest($1::int[]) AS waiting(pid)
CROSS JOIN LATERAL unnest(pg_blocking_pids(waiting.pid)) AS blocking(pid)
JOIN pg_stat_activity a ON a.pid = blocking.pid
ORDER BY a.pid
"""


def query_start(query: str | None) -> str:
    """The start of `query`, up to its first literal and at most a few words."""
    text = " ".join((query or "").split())
    if not text:
        return ""
    match = _LITERAL.search(text)
    cut = text[: match.start()] if match else text
    if len(cut) > _QUERY_CHARS:
        cut = cut[:_QUERY_CHARS].rsplit(" ", 1)[0]
    cut = cut.rstrip()
    return cut if cut == text else f"{cut} …"


@dataclass(frozen=True)
class Blocker:
    pid: int
    application_name: str
    state: str
    seconds: float
    query: str

    def describe(self) -> str:
        name = self.application_name or "no application_name"
        state = f"{self.state or 'busy'} for {self.seconds:.0f} s"
        query = f": {self.query}" if self.query else ""
        return f"pid {self.pid} ({name}), {state}{query}"


async def blockers_of(observer: asyncpg.Connection, pids: list[int]) -> list[Blocker]:
    rows = await observer.fetch(_BLOCKERS, pids)
    return [
        Blocker(
            row["pid"],
            row["application_name"] or "",
            row["state"] or "",
            row["seconds"] or 0.0,
            query_start(row["query"]),
        )
        for row in rows
    ]


class BlockWatch:
    """Polls who blocks `pids` while a step runs; `seen` is what it found last.

    One watcher per run; `observe()` brackets each step. Its connection is opened the first
    time a step runs long enough to be worth a look, and closed by `aclose()`.
    """

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        self._connect = connect
        self._observer: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.seen: list[Blocker] = []

    def start(self, pids: Callable[[], list[int]], lock_timeout: float) -> None:
        self.seen = []
        if lock_timeout > 0:
            self._task = asyncio.ensure_future(self._poll(pids, lock_timeout))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll(self, pids: Callable[[], list[int]], lock_timeout: float) -> None:
        await asyncio.sleep(lock_timeout / 2)
        while True:
            with contextlib.suppress(Exception):
                # A watcher that cannot see is no reason to stop the step it watches.
                if self._observer is None or self._observer.is_closed():
                    self._observer = await self._connect()
                # A poll that ends just after the wait did finds no one: keep the last seen.
                if found := await blockers_of(self._observer, pids()):
                    self.seen = found
            await asyncio.sleep(max(0.05, lock_timeout / 5))

    async def aclose(self) -> None:
        await self.stop()
        observer, self._observer = self._observer, None
        if observer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(observer.close(), 5)
