"""PostgreSQL migrations on a database serving traffic: a step waits at most its lock_timeout
for a lock, so the queries queued behind it never stall for longer; it names who blocks it, is
rolled back and tried again; a step blocked for good ends the run with exit 3 and nothing of it
recorded. And one WAL flush per run, whatever the number of migrations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CDT, Project
from tests.harness import PostgresHarness, _pg

LOCK_TIMEOUT = 0.5
# The secret literal in the blocker's query: it must never be printed.
SECRET = "s3cr3t-literal"

ALTER = """\
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("ALTER TABLE accounts ADD COLUMN note text")

    async def down(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("ALTER TABLE accounts DROP COLUMN note")
"""


@pytest.fixture
def pg(tmp_path: Path, postgres_url: str) -> Iterator[Project]:
    harness = PostgresHarness(tmp_path / "backend", postgres_url)
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, harness)
    project.env["CLANDESTINO_POSTGRES_LOCK_TIMEOUT"] = str(LOCK_TIMEOUT)
    yield project
    harness.cleanup()


def _url(project: Project) -> str:
    assert isinstance(project.harness, PostgresHarness)
    return project.harness.url


def _make_accounts(project: Project) -> None:
    _pg(
        _url(project),
        lambda c: c.execute(
            "CREATE TABLE accounts (id int PRIMARY KEY, secret text);"
            " INSERT INTO accounts SELECT g, 'x' FROM generate_series(1, 1000) g"
        ),
    )


class Traffic:
    """A session idle in transaction holding a lock on `accounts`, and readers of that table
    timing every SELECT while a `cdt -m` runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waits: list[float] = []
        self.stop = asyncio.Event()

    async def blocker(self) -> Any:
        import asyncpg

        connection = await asyncpg.connect(
            self.url, server_settings={"application_name": "billing-worker"}
        )
        await connection.execute("BEGIN")
        await connection.execute(f"SELECT * FROM accounts WHERE secret <> '{SECRET}'")
        return connection

    async def read(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.url)
        try:
            for _ in range(100_000):  # bounded; loopback only
                if self.stop.is_set():
                    break
                began = time.perf_counter()
                await connection.fetchval("SELECT count(*) FROM accounts")
                self.waits.append(time.perf_counter() - began)
                await asyncio.sleep(0.01)
        finally:
            await connection.close()


async def _run_blocked(
    project: Project, release_after_blocks: int | None, env: dict[str, str]
) -> tuple[int, str, str, Traffic, int]:
    """`cdt -m` against a held lock; the blocker ends after `release_after_blocks` blocked
    attempts were printed (never when None)."""
    traffic = Traffic(_url(project))
    blocker = await traffic.blocker()
    blocker_pid = blocker.get_server_pid()
    readers = [asyncio.ensure_future(traffic.read()) for _ in range(4)]
    process = await asyncio.create_subprocess_exec(
        CDT,
        "-m",
        cwd=project.root,
        env={**project.env, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    out: list[str] = []
    blocks = 0
    try:
        async with asyncio.timeout(60):
            while line := (await process.stdout.readline()).decode():
                out.append(line)
                if "for a lock held by" in line:
                    blocks += 1
                    if blocks == release_after_blocks:
                        await blocker.execute("ROLLBACK")
            err = (await process.stderr.read()).decode()
            code = await process.wait()
    finally:
        traffic.stop.set()
        await asyncio.gather(*readers)
        await blocker.close()
    return code, "".join(out), err, traffic, blocker_pid


def test_a_blocked_alter_never_stalls_readers_names_its_blocker_and_succeeds_once_it_ends(
    pg: Project,
) -> None:
    _make_accounts(pg)
    pg.add(ALTER, "add_note")
    code, out, err, traffic, pid = asyncio.run(
        _run_blocked(pg, release_after_blocks=2, env={"CLANDESTINO_POSTGRES_LOCK_ATTEMPTS": "50"})
    )
    assert code == 0, out + err
    blocked = [line for line in out.splitlines() if "for a lock held by" in line]
    assert len(blocked) >= 2
    assert f"pid {pid} (billing-worker), idle in transaction for" in blocked[0]
    assert "SELECT * FROM accounts WHERE secret <> …" in blocked[0]
    assert "attempt 1 of 50 rolled back, trying again in" in blocked[0]
    assert SECRET not in out + err
    # No SELECT waited longer than the lock timeout and a little.
    assert len(traffic.waits) > 20
    assert max(traffic.waits) < LOCK_TIMEOUT + 0.1, sorted(traffic.waits)[-5:]
    assert max(traffic.waits) > LOCK_TIMEOUT / 2  # the readers did queue behind the ALTER
    assert pg.harness.records() == [pg.migrations.glob("*add_note.py").__next__().stem]
    columns = pg.harness.query(  # type: ignore[attr-defined]
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
    )
    assert ("note",) in columns


def test_a_blocker_that_never_ends_stops_the_run_with_exit_3_and_nothing_recorded(
    pg: Project,
) -> None:
    _make_accounts(pg)
    pg.add(ALTER, "add_note")
    code, out, err, traffic, pid = asyncio.run(
        _run_blocked(pg, release_after_blocks=None, env={"CLANDESTINO_POSTGRES_LOCK_ATTEMPTS": "3"})
    )
    assert code == 3, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"blocked by pid {pid} (billing-worker), idle in transaction" in lines[0]
    assert "in 3 attempts" in lines[0]
    assert "CLANDESTINO_POSTGRES_LOCK_TIMEOUT" in lines[0]
    assert SECRET not in out + err
    assert max(traffic.waits) < LOCK_TIMEOUT + 0.1, sorted(traffic.waits)[-5:]
    assert pg.harness.records() == []
    harness = pg.harness
    assert isinstance(harness, PostgresHarness)
    assert ("note",) not in harness.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
    )
    # No lock of ours is left: an ALTER of the table and the migration lock are free at once.
    _pg(_url(pg), lambda c: c.execute("SET lock_timeout = 100; LOCK TABLE accounts; "))
    leftover = harness.query(
        "SELECT l.locktype FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE a.application_name LIKE 'clandestino%'"
    )
    assert leftover == []
    again = pg.cdt("-m")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(harness.records()) == 1
