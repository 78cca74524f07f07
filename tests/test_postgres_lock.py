"""The PostgreSQL lock on a bad day: its session terminated or timed out by the server mid-step,
a second deployer started right after, a record written from another connection after the lock
is gone, and deployers that really overlap. Each migration's effect happens at most once."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clandestino.errors import DatabaseUnavailable
from tests.conftest import Project
from tests.harness import PostgresHarness, _pg

# up() adds its effect, says it got there (a file named after its process), then waits for `go`.
BARRIER = """\
import asyncio
import os
from pathlib import Path

from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()
    transactional = {transactional}

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS effects (tag text)")
            await conn.execute("INSERT INTO effects (tag) VALUES ('slow')")
        Path({reached!r}, str(os.getpid())).touch()
        go = Path({go!r})
        for _ in range(1200):
            if go.exists():
                break
            await asyncio.sleep(0.05)

    async def down(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("DELETE FROM effects WHERE tag = 'slow'")
"""


class Barrier:
    def __init__(self, workdir: Path) -> None:
        self.reached = workdir / "reached"
        self.reached.mkdir()
        self.go = workdir / "go"

    def source(self, transactional: bool) -> str:
        return BARRIER.format(
            transactional=transactional, reached=str(self.reached), go=str(self.go)
        )

    def arrived(self) -> int:
        return len(list(self.reached.iterdir()))

    def open(self) -> None:
        self.go.touch()


@pytest.fixture
def pg(tmp_path: Path, postgres_url: str) -> Iterator[Project]:
    harness = PostgresHarness(tmp_path / "backend", postgres_url)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


def _harness(project: Project) -> PostgresHarness:
    assert isinstance(project.harness, PostgresHarness)
    return project.harness


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


_HOLDERS = (
    "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
    " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
)


def _lock_holders(harness: PostgresHarness) -> list[int]:
    """Backend pids holding an advisory lock in this test's database."""
    return [int(str(row[0])) for row in harness.query(_HOLDERS)]


async def _holders_seen_by(connection: Any) -> list[int]:
    return [int(row[0]) for row in await connection.fetch(_HOLDERS)]


def _lock_waiters(harness: PostgresHarness) -> int:
    rows = harness.query(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
    )
    return int(str(rows[0][0]))


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _setup(pg: Project, tmp_path: Path, transactional: bool) -> tuple[Barrier, str, str]:
    barrier = Barrier(tmp_path)
    slow = pg.add(barrier.source(transactional), "slow").stem
    after = pg.add_effect("after").stem
    return barrier, slow, after


def _check_outcome(
    pg: Project,
    transactional: bool,
    first: tuple[int, str, str],
    second: tuple[int, str, str],
    slow: str,
    after: str,
) -> None:
    harness = _harness(pg)
    code, _, err = first
    # The run that lost its lock stops with one line, and records nothing more.
    assert code == 3, err
    assert len(_errors(err)) == 1 and "Traceback" not in err
    code, out, err = second
    if transactional:
        # The first run's step died with its session; the second ran it, once.
        assert code == 0, err
        assert sorted(harness.effects()) == ["after", "slow"]
        assert harness.records() == [slow, after]
        return
    # The first run's step did its work outside any transaction and may be half done: the next
    # run refuses to go past it until a person has looked.
    assert code == 1, out + err
    assert len(_errors(err)) == 1 and f"{slow}: up() by" in err and "never finished" in err
    assert "cdt --repair" in err
    assert harness.effects() == ["slow"]
    listed = pg.cdt("-lm")
    assert "never finished" in listed.stdout + listed.stderr
    # The person undoes what it did, repairs, and the next run does the rest exactly once.
    harness.remove_effects("slow")
    repaired = pg.cdt("--repair", "-y")
    assert repaired.returncode == 0, repaired.stderr
    again = pg.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert sorted(harness.effects()) == ["after", "slow"]
    assert harness.records() == [slow, after]


@pytest.mark.parametrize("transactional", [True, False], ids=["transactional", "outside"])
def test_terminating_the_lock_session_mid_step_runs_each_effect_at_most_once(
    pg: Project, tmp_path: Path, transactional: bool
) -> None:
    harness = _harness(pg)
    barrier, slow, after = _setup(pg, tmp_path, transactional)
    first = pg.start("-m")
    _wait_for(lambda: barrier.arrived() == 1, "the first deployer is at the barrier")
    holders = _lock_holders(harness)
    assert len(holders) == 1

    harness.query("SELECT pg_terminate_backend($1)", holders[0])
    _wait_for(lambda: not _lock_holders(harness), "the lock's session is gone")
    second = pg.start("-m")
    if transactional:
        # Both deployers in the same step at once: the second took the lock the first lost.
        _wait_for(lambda: barrier.arrived() == 2, "the second deployer is at the barrier")
    else:
        second_result = _finish(second)
    barrier.open()

    first_result = _finish(first)
    second_result = _finish(second) if transactional else second_result
    _check_outcome(pg, transactional, first_result, second_result, slow, after)


@pytest.mark.parametrize(
    ("transactional", "timeout"),
    [(True, "idle_in_transaction_session_timeout"), (False, "idle_session_timeout")],
    ids=["transactional", "outside"],
)
def test_a_server_timeout_shorter_than_a_step_runs_each_effect_at_most_once(
    pg: Project, tmp_path: Path, transactional: bool, timeout: str
) -> None:
    harness = _harness(pg)
    version = int(str(harness.query("SHOW server_version_num")[0][0]))
    if timeout == "idle_session_timeout" and version < 140000:
        pytest.skip("idle_session_timeout is PostgreSQL 14's")
    barrier, slow, after = _setup(pg, tmp_path, transactional)
    harness.query(f'ALTER DATABASE "{harness.database}" SET {timeout} = 1000')
    first = pg.start("-m")
    _wait_for(lambda: barrier.arrived() == 1, "the first deployer is at the barrier")

    _wait_for(lambda: not _lock_holders(harness), f"the server's {timeout} ends the session")
    barrier.open()
    second = pg.start("-m")

    _check_outcome(pg, transactional, _finish(first), _finish(second), slow, after)


def test_deployers_started_together_wait_for_the_one_holding_the_lock(
    pg: Project, tmp_path: Path
) -> None:
    harness = _harness(pg)
    barrier, slow, after = _setup(pg, tmp_path, transactional=True)
    deployers = [pg.start("-m") for _ in range(4)]
    # Every deployer is started and all but one wait for the lock before any step can finish.
    _wait_for(lambda: barrier.arrived() == 1, "one deployer is at the barrier")
    _wait_for(lambda: _lock_waiters(harness) == 3, "the three others wait for the lock")
    barrier.open()

    results = [_finish(process) for process in deployers]

    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    assert sorted(harness.effects()) == ["after", "slow"]
    assert harness.records() == [slow, after]
    assert barrier.arrived() == 1
    assert sum("waiting for the lock held by pid" in out for _, out, _ in results) == 3


def _store(harness: PostgresHarness) -> Any:
    from clandestino_postgres.connect import ConnectionTarget
    from clandestino_postgres.store import PostgresStore

    return PostgresStore(
        ConnectionTarget.parse(harness.url, 10), schema=None, table="clandestino", read_only=False
    )


def test_a_record_written_from_another_connection_needs_the_lock_held(pg: Project) -> None:
    import asyncpg

    harness = _harness(pg)

    async def scenario() -> None:
        store = _store(harness)
        await store.open()
        other = await asyncpg.connect(harness.url)
        try:
            async with store.lock(5, lambda holder: None):
                await store.ensure()
                fence = store.fence
                # While the lock is held, another connection's transaction may record.
                async with other.transaction():
                    sql, args = fence.record("0001_kept", "sum", 1)
                    status = await other.execute(sql, *args)
                    fence.check(int(status.split()[-1]), "0001_kept")
                await other.execute("SELECT pg_terminate_backend($1)", store._conn.get_server_pid())
                while await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", fence.pid
                ):
                    await asyncio.sleep(0.05)
                # Once the session that held it is gone, nothing more is recorded.
                async with other.transaction():
                    sql, args = fence.record("0002_lost", "sum", 1)
                    status = await other.execute(sql, *args)
                    with pytest.raises(DatabaseUnavailable, match="lock was lost"):
                        fence.check(int(status.split()[-1]), "0002_lost")
        finally:
            await other.close()
            await store.aclose()

    asyncio.run(scenario())

    assert harness.records() == ["0001_kept"]


def test_the_lock_is_released_while_the_process_lives_on_after_a_failure(
    pg: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clandestino import migrate
    from clandestino.errors import MigrationFailed

    harness = _harness(pg)
    pg.add_effect("fails", fail=True)
    for name, value in harness.env().items():
        monkeypatch.setenv(name, value)

    async def fail_then_look() -> tuple[list[int], int]:
        import asyncpg

        watch = await asyncpg.connect(harness.url)
        store = _store(harness)
        await store.open()
        try:
            # The store's own lock, left by an exception, while its connection stays open.
            with pytest.raises(RuntimeError):
                async with store.lock(5, lambda holder: None):
                    assert await _holders_seen_by(watch) == [store._conn.get_server_pid()]
                    raise RuntimeError("a step failed")
            left = await _holders_seen_by(watch)
            await store.aclose()
            # An application that runs its migrations at start-up and carries on after a failure.
            with pytest.raises(MigrationFailed):
                await migrate(migrations_dir=pg.migrations, on_event=lambda event: None)
            left += await _holders_seen_by(watch)
            sessions = await watch.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'clandestino%'"
            )
            return left, int(sessions)
        finally:
            await store.aclose()
            await watch.close()

    holders, sessions = asyncio.run(fail_then_look())

    assert holders == []
    assert sessions == 0
    assert harness.effects() == []


def test_a_table_of_an_older_clandestino_is_read_with_its_checksums(
    pg: Project,
) -> None:
    harness = _harness(pg)
    # Times are kept in the session's zone (the original's default); they are read back in UTC.
    harness.query(f"ALTER DATABASE \"{harness.database}\" SET timezone TO 'America/Sao_Paulo'")
    name = pg.add_effect("old").stem

    def older_table(connection: Any) -> Any:
        return connection.execute(
            textwrap.dedent(
                f"""
                CREATE TABLE clandestino (id serial PRIMARY KEY,
                    migration_name varchar(255) UNIQUE NOT NULL,
                    created_on timestamp NOT NULL DEFAULT current_timestamp,
                    checksum text, duration_ms integer);
                INSERT INTO clandestino (migration_name, checksum, duration_ms)
                    VALUES ('{name}', 'not-the-file', 5);
                """
            )
        )

    _pg(harness.url, older_table)

    listed = pg.cdt("-lm")

    assert listed.returncode == 0, listed.stderr
    # The checksum is read (the file differs from it) without adding a column first.
    assert "changed" in listed.stdout + listed.stderr
    columns = harness.query(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'clandestino'"
    )
    assert columns == [(5,)]
    from datetime import UTC, datetime, timedelta

    async def read() -> Any:
        store = _store(harness)
        await store.open()
        try:
            return await store.applied()
        finally:
            await store.aclose()

    (record,) = asyncio.run(read())
    assert record.checksum == "not-the-file" and record.duration_ms == 5
    assert record.applied_at is not None
    assert abs(record.applied_at - datetime.now(UTC)) < timedelta(minutes=5)
