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
        async with asyncio.timeout(30):
            while line := (await process.stdout.readline()).decode():
                out.append(line)
                if "for a lock held by" in line:
                    blocks += 1
                    if blocks == release_after_blocks:
                        await blocker.execute("ROLLBACK")
            err = (await process.stderr.read()).decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        # The blocker first: readers may be queued behind what it blocks.
        await blocker.close()
        traffic.stop.set()
        await asyncio.gather(*readers)
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
    assert isinstance(pg.harness, PostgresHarness)
    columns = pg.harness.query(
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


# The original's style: a real psycopg cursor, with the migration's own lock_timeout.
PSYCOPG_ALTER = """\
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()
    lock_timeout = {lock_timeout}

    async def up(self) -> None:
        async with self.infra.get_cursor() as cursor:
            await cursor.execute("ALTER TABLE accounts ADD COLUMN note text")

    async def down(self) -> None:
        async with self.infra.get_cursor() as cursor:
            await cursor.execute("ALTER TABLE accounts DROP COLUMN note")
"""


def test_a_blocked_psycopg_cursor_step_waits_its_own_lock_timeout_names_its_blocker_and_retries(
    pg: Project,
) -> None:
    _make_accounts(pg)
    pg.add(PSYCOPG_ALTER.format(lock_timeout=LOCK_TIMEOUT), "add_note")
    # The run's setting is long: only the step's own SET LOCAL, run on the psycopg connection
    # where its transaction begins, keeps the ALTER from queueing the readers for 20 s.
    env = {"CLANDESTINO_POSTGRES_LOCK_TIMEOUT": "20", "CLANDESTINO_POSTGRES_LOCK_ATTEMPTS": "50"}
    code, out, err, traffic, pid = asyncio.run(_run_blocked(pg, release_after_blocks=2, env=env))
    assert code == 0, out + err
    blocked = [line for line in out.splitlines() if "for a lock held by" in line]
    assert len(blocked) >= 2
    assert f"waited {LOCK_TIMEOUT:g} s for a lock held by pid {pid} (billing-worker)" in blocked[0]
    assert "idle in transaction for" in blocked[0]
    assert "attempt 1 of 50 rolled back, trying again in" in blocked[0]
    assert SECRET not in out + err
    assert len(traffic.waits) > 20
    assert max(traffic.waits) < LOCK_TIMEOUT + 0.1, sorted(traffic.waits)[-5:]
    assert max(traffic.waits) > LOCK_TIMEOUT / 2  # the readers did queue behind the ALTER
    assert pg.harness.records() == [next(pg.migrations.glob("*add_note.py")).stem]
    assert isinstance(pg.harness, PostgresHarness)
    assert ("note",) in pg.harness.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
    )


def test_a_psycopg_cursor_migration_blocked_for_good_is_exit_3_with_nothing_recorded(
    pg: Project,
) -> None:
    _make_accounts(pg)
    pg.add(PSYCOPG_ALTER.format(lock_timeout=LOCK_TIMEOUT), "add_note")
    env = {"CLANDESTINO_POSTGRES_LOCK_ATTEMPTS": "2"}
    code, out, err, _, pid = asyncio.run(_run_blocked(pg, release_after_blocks=None, env=env))
    assert code == 3, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"blocked by pid {pid} (billing-worker), idle in transaction" in lines[0]
    assert "in 2 attempts" in lines[0]
    assert "Traceback" not in out + err
    assert pg.harness.records() == []
    assert isinstance(pg.harness, PostgresHarness)
    assert ("note",) not in pg.harness.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
    )


INSERT = """\
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("INSERT INTO effects (n) VALUES ({n})")

    async def down(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("DELETE FROM effects WHERE n = {n}")
"""


class WalSyncs:
    """WAL flushes to disk, read from the server's statistics: those of client sessions (the
    ones a commit waits for; pg_stat_io, PostgreSQL 18+) and the whole cluster's (pg_stat_wal,
    PostgreSQL 14 to 17; pg_stat_io after), which also counts the WAL writer's background ones."""

    def __init__(self, url: str) -> None:
        self.url = url

    def read(self) -> tuple[int | None, int]:
        async def run(connection: Any) -> tuple[int | None, int]:
            version = await connection.fetchval("SHOW server_version_num")
            if int(version) >= 180000:
                rows = await connection.fetch(
                    "SELECT backend_type, coalesce(sum(fsyncs), 0)::bigint AS n FROM pg_stat_io"
                    " WHERE object = 'wal' GROUP BY backend_type"
                )
                by_type = {row["backend_type"]: int(row["n"]) for row in rows}
                return by_type.get("client backend", 0), sum(by_type.values())
            return None, int(await connection.fetchval("SELECT wal_sync FROM pg_stat_wal"))

        return _pg(self.url, run)

    def settle(self) -> None:
        """Wait until the run's sessions are gone: a session reports its counts as it ends."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = _pg(
                self.url,
                lambda c: c.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'clandestino%'"
                ),
            )
            if left == 0:
                return
            time.sleep(0.05)
        raise AssertionError("the run's sessions did not end")


def _flushes_of_a_run(
    project: Project, count: int, env: dict[str, str], template: str = INSERT
) -> tuple[int | None, int, float]:
    _pg(_url(project), lambda c: c.execute("CREATE TABLE IF NOT EXISTS effects (n int)"))
    for n in range(count):
        project.add(template.format(n=n), f"insert_{n}")
    syncs = WalSyncs(_url(project))
    syncs.settle()
    client_before, cluster_before = syncs.read()
    began = time.perf_counter()
    result = project.cdt("-m", env=env, timeout=600)
    seconds = time.perf_counter() - began
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(project.harness.records()) == count
    syncs.settle()
    client_after, cluster_after = syncs.read()
    client = None if client_after is None else client_after - (client_before or 0)
    return client, cluster_after - cluster_before, seconds


@pytest.mark.parametrize("count", [1, 100, 1000])
def test_a_run_flushes_the_wal_once_whatever_the_number_of_migrations(
    pg: Project, count: int
) -> None:
    client, cluster, seconds = _flushes_of_a_run(pg, count, env={})
    print(f"N={count}: client flushes {client}, cluster flushes {cluster}, {seconds:.2f} s")
    if client is not None:
        # The commits that waited for the disk: the control table's creation and the last.
        assert client == 2
    # The WAL writer flushes what async commits wrote, in the background, at most every
    # wal_writer_delay (200 ms); nothing waits for it.
    assert cluster <= 2 + seconds / 0.2 + 2


PSYCOPG_INSERT = """\
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.get_cursor() as cursor:
            await cursor.execute("INSERT INTO effects (n) VALUES (%s)", [{n}])

    async def down(self) -> None:
        async with self.infra.get_cursor() as cursor:
            await cursor.execute("DELETE FROM effects WHERE n = %s", [{n}])
"""


def test_psycopg_cursor_migrations_commit_without_waiting_and_the_last_commit_flushes_them(
    pg: Project,
) -> None:
    # Their work and records commit on the psycopg connection; the run's last commit, on the
    # asyncpg connection, comes after them in the one WAL stream, so its flush covers them.
    client, cluster, seconds = _flushes_of_a_run(pg, 100, env={}, template=PSYCOPG_INSERT)
    print(f"N=100 psycopg: client flushes {client}, cluster flushes {cluster}, {seconds:.2f} s")
    assert _pg(_url(pg), lambda c: c.fetchval("SELECT count(*) FROM effects")) == 100
    if client is not None:
        assert client == 2
    assert cluster <= 2 + seconds / 0.2 + 2


def test_flush_each_migration_when_asked(pg: Project) -> None:
    client, cluster, _ = _flushes_of_a_run(
        pg, 100, env={"CLANDESTINO_POSTGRES_FLUSH_EACH_MIGRATION": "true"}
    )
    print(f"N=100, a flush each: client flushes {client}, cluster flushes {cluster}")
    assert cluster >= 100
    if client is not None:
        assert client >= 100


CONCURRENT_INDEXES = """\
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()
    transactional = False

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            # Two statements in one string: each must run on its own, outside a transaction.
            await conn.execute(
                "CREATE INDEX CONCURRENTLY accounts_secret ON accounts (secret);"
                " CREATE UNIQUE INDEX CONCURRENTLY accounts_secret_unique ON accounts (secret)"
            )

    async def down(self) -> None:
        pass
"""


def _indexes(project: Project) -> list[tuple[object, ...]]:
    assert isinstance(project.harness, PostgresHarness)
    return project.harness.query(
        "SELECT c.relname::text, i.indisvalid FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 'accounts'::regclass AND c.relname LIKE 'accounts_secret%'"
        " ORDER BY 1"
    )


def test_a_failed_concurrent_build_leaves_an_invalid_index_that_repair_drops(pg: Project) -> None:
    _make_accounts(pg)  # every secret is 'x': the unique index fails half-way
    pg.add(CONCURRENT_INDEXES, "indexes")
    failed = pg.cdt("-m")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "could not create unique index" in failed.stderr
    # The first statement ran on its own and stays; the second left its index invalid.
    assert _indexes(pg) == [("accounts_secret", True), ("accounts_secret_unique", False)]
    repaired = pg.cdt("--repair", "-y")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "dropped invalid index public.accounts_secret_unique" in repaired.stdout
    assert _indexes(pg) == [("accounts_secret", True)]
    again = pg.cdt("--repair", "-y")
    assert "Nothing to repair" in again.stdout
