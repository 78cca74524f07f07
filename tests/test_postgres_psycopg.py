"""The original's PostgreSQL migrations, psycopg API included, on a real server: `get_cursor()`
hands a real psycopg 3 cursor, whose transaction carries the step's record; and every connection
string form the original's driver (libpq) took, never printed with its password."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clandestino_postgres.store import RecordFence
from tests.conftest import Project, clean_environ, skip_outside_ci
from tests.harness import PostgresHarness, _pg
from tests.servers.postgres import PASSWORD_ROLE

SETTING = "CLANDESTINO_POSTGRES_CONNECTION_STRING"
# Spaces, both quotes, backslashes, = and non-ASCII need libpq quoting; @ / : # ? % would be
# misread in the URL handed to asyncpg unless percent-encoded.
PASSWORD = 'it\'s a \\secret\\ = "q" ü @/:#?%41'
KV_PASSWORD = "'" + PASSWORD.replace("\\", "\\\\").replace("'", "\\'") + "'"


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


def _migration(up: str, down: str = "pass", transactional: bool = True) -> str:
    body = textwrap.indent(textwrap.dedent(up), " " * 8)
    undo = textwrap.indent(textwrap.dedent(down), " " * 8)
    flag = "" if transactional else "    transactional = False\n"
    return (
        "import psycopg\n"
        "from psycopg import sql\n"
        "from clandestino_interfaces import AbstractMigration\n"
        "from clandestino_postgres.infra import PostgresInfra\n\n\n"
        "class Migration(AbstractMigration):\n"
        f"    infra = PostgresInfra()\n{flag}\n"
        f"    async def up(self) -> None:\n{body}\n"
        f"    async def down(self) -> None:\n{undo}\n"
    )


ORIGINAL_STYLE = _migration(
    r"""
    async with self.infra.get_cursor() as cursor:
        assert isinstance(cursor, psycopg.AsyncCursor)
        table = sql.Identifier("Things")
        await cursor.execute(
            sql.SQL("CREATE TABLE {} (name text PRIMARY KEY, note text)").format(table)
        )
        await cursor.execute(
            sql.SQL("INSERT INTO {} VALUES (E'it\\'s; here', %s), (%s, %s)").format(table),
            ["p1", "b", "100%"],
        )
        # Two statements and no parameters: sent as one simple query, as psycopg does.
        await cursor.execute(
            "INSERT INTO \"Things\" VALUES (E'c\\'; d', 'x');"
            " INSERT INTO \"Things\" VALUES ('e', 'y')"
        )
        try:
            async with cursor.connection.transaction():
                await cursor.execute('INSERT INTO "Things" VALUES (%s, %s)', ["b", "dup"])
        except psycopg.errors.UniqueViolation:
            await cursor.execute('INSERT INTO "Things" VALUES (%s, %s)', ["caught", "ok"])
        await cursor.execute('SELECT name AS thing_name, note FROM "Things" WHERE name = %s', ["b"])
        names = [column.name for column in cursor.description]
        assert await cursor.fetchone() == ("b", "100%")
        await cursor.execute(
            'INSERT INTO "Things" VALUES (%s, %s)', ["columns", ",".join(names)]
        )
    """,
    """
    async with self.infra.get_cursor() as cursor:
        await cursor.execute('DROP TABLE "Things"')
    """,
)


def test_an_original_migration_using_psycopg_api_runs_unchanged(pg: Project) -> None:
    applied = pg.add(ORIGINAL_STYLE, "psycopg_api")

    result = pg.cdt("-m")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = _harness(pg).query('SELECT name, note FROM "Things" ORDER BY name')
    assert rows == [
        ("b", "100%"),
        ("c'; d", "x"),
        ("caught", "ok"),
        ("columns", "thing_name,note"),
        ("e", "y"),
        ("it's; here", "p1"),
    ]
    assert _harness(pg).records() == [applied.stem]

    rolled_back = pg.cdt("-rm", "--yes")

    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert _harness(pg).query("SELECT to_regclass('\"Things\"')::text") == [(None,)]
    assert _harness(pg).records() == []


def test_a_failing_statement_leaves_neither_its_work_nor_a_record(pg: Project) -> None:
    first = pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE kept (n int)")
            """
        ),
        "kept",
    )
    failing = pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE half (n int)")
                await cursor.execute("INSERT INTO half VALUES (%s)", [1])
                await cursor.execute("SELECT 1 / 0")
            """,
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("DROP TABLE half")
            """,
        ),
        "failing",
    )

    result = pg.cdt("-m")

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert output.count("division by zero") == 1, output
    assert "InFailedSqlTransaction" not in output and "InFailedSQLTransaction" not in output
    assert "down() then failed too" not in output
    assert f"{failing.stem} failed in up(): DivisionByZero" in output
    harness = _harness(pg)
    assert harness.query("SELECT to_regclass('half')::text") == [(None,)]
    assert harness.query("SELECT to_regclass('kept')::text") == [("kept",)]
    assert harness.records() == [first.stem]


def test_a_run_that_loses_its_lock_commits_neither_the_cursor_work_nor_its_record(
    pg: Project,
) -> None:
    # The migration ends the session that holds the run's lock, then finishes normally: its
    # record is written in its cursor's transaction, fenced on the lock, so neither commits.
    # pg_terminate_backend only signals; with a timeout it waits until the session is gone and
    # its lock with it (a dying session still holds its locks for a moment).
    lost = pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE orphan (n int)")
                await cursor.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                )
                assert (await cursor.fetchone()) == (True,)
            """
        ),
        "loses_lock",
    )

    result = pg.cdt("-m")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "lock was lost" in result.stderr
    harness = _harness(pg)
    assert harness.query("SELECT to_regclass('orphan')::text") == [(None,)]
    assert lost.stem not in harness.records()


def test_a_record_write_still_in_flight_from_an_earlier_holder_is_waited_for(
    pg: Project,
) -> None:
    # An earlier holder's psycopg transaction passed the fence (its session was ending, and
    # pg_locks still showed its lock) and has yet to commit the step with its record. The next
    # holder must wait for that transaction before it reads the records, or it runs the step
    # again. The earlier holder is played here by a connection doing what the store does.
    pg.add_effect("first")
    assert pg.cdt("-m").returncode == 0
    second = pg.add_effect("second")
    harness = _harness(pg)

    async def scenario() -> tuple[int, str]:
        import asyncio

        import asyncpg

        earlier = await asyncpg.connect(harness.url)
        watcher = await asyncpg.connect(harness.url)
        try:
            key = await earlier.fetchval(
                "SELECT hashtextextended(current_schema() || '.' || 'clandestino', 0)"
            )
            in_flight = earlier.transaction()
            await in_flight.start()
            await earlier.execute(RecordFence("clandestino", 0, key).drain_shared)
            await earlier.execute("INSERT INTO effects (tag) VALUES ('second')")
            await earlier.execute(
                "INSERT INTO clandestino (migration_name) VALUES ($1)", second.stem
            )
            deployer = pg.start("-m")
            deadline = asyncio.get_running_loop().time() + 60
            # The deployer holds the run's lock and waits on the drain lock: proof it waits.
            while not await watcher.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objsubid = 2 AND NOT granted"
            ):
                assert deployer.poll() is None, deployer.communicate()
                assert asyncio.get_running_loop().time() < deadline, "the deployer never waited"
                await asyncio.sleep(0.05)
            await in_flight.commit()
            out, err = await asyncio.to_thread(deployer.communicate, timeout=120)
            return deployer.returncode, out + err
        finally:
            await earlier.close()
            await watcher.close()

    import asyncio

    code, output = asyncio.run(scenario())

    assert code == 0, output
    assert harness.effects() == ["first", "second"]
    assert harness.records().count(second.stem) == 1


def test_a_cursor_outside_a_transaction_commits_each_statement(pg: Project) -> None:
    pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE big (n int)")
                await cursor.execute("CREATE INDEX CONCURRENTLY big_n ON big (n)")
            """,
            transactional=False,
        ),
        "concurrently",
    )
    pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("INSERT INTO big VALUES (%s)", [7])
            """
        ),
        "after",
    )

    result = pg.cdt("-m")

    assert result.returncode == 0, result.stdout + result.stderr
    harness = _harness(pg)
    assert harness.query("SELECT n FROM big") == [(7,)]
    assert harness.query("SELECT to_regclass('big_n')::text") == [("big_n",)]
    assert len(harness.records()) == 2


def test_importing_clandestino_and_help_do_not_import_psycopg() -> None:
    code = (
        "import sys, clandestino, clandestino_postgres.infra, clandestino_postgres.store\n"
        "from clandestino.cli import main\n"
        "try:\n    main(['-h'])\nexcept SystemExit:\n    pass\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# Connection strings ------------------------------------------------------------------------


@pytest.fixture
def password_role(pg: Project, postgres_url: str) -> str:
    """The role that must log in with a password, given PASSWORD and a schema to work in."""

    async def create(connection: Any) -> None:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", PASSWORD_ROLE
        )
        verb = "ALTER" if exists else "CREATE"
        escaped = PASSWORD.replace("'", "''")
        await connection.execute(f"{verb} ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{escaped}'")

    _pg(postgres_url, create)
    _pg(
        _harness(pg).url,
        lambda c: c.execute(f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}"),
    )
    return PASSWORD_ROLE


def _keywords(project: Project, user: str, password: str) -> str:
    """A libpq key=value string for this test's database, reached as the harness reaches it."""
    parts = urlsplit(_harness(project).url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = parts.hostname or query.get("host", "localhost")
    port = parts.port or query.get("port", "5432")
    database = parts.path.lstrip("/")
    return f"host = {host}  port={port} dbname='{database}' user={user} password={password}"


def test_a_key_value_string_with_quoted_password_applies_migrations(
    pg: Project, password_role: str
) -> None:
    pg.add(
        _migration(
            """
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE via_cursor (n int)")
            """
        ),
        "cursor",
    )
    pg.add_effect("asyncpg")
    wrong = pg.cdt("-lm", env={SETTING: _keywords(pg, password_role, "'not it'")})
    if wrong.returncode == 0:
        skip_outside_ci("this server lets the role in without checking its password")

    result = pg.cdt("-m", env={SETTING: _keywords(pg, password_role, KV_PASSWORD)})

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert PASSWORD not in output and KV_PASSWORD not in output
    assert "password=***" in result.stdout
    harness = _harness(pg)
    assert harness.effects() == ["asyncpg"]
    assert harness.query("SELECT to_regclass('via_cursor')::text") == [("via_cursor",)]
    assert len(harness.records()) == 2


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            f"host=localhost dbname=app user=u password='{PASSWORD}",
            "not a valid key=value string",
        ),
        (f"host=localhost password={PASSWORD} dbname=app", "not a valid key=value string"),
        ("postgresql:/u:hunter2secret@localhost/db", "not postgresql:// (two slashes)"),
        ("postgres:/u:hunter2secret@localhost/db", "not postgres:// (two slashes)"),
        ("postgresql://u:hunter2@secret@localhost/db", "must be percent-encoded"),
        ("postgresql://u:hunter2/secret@localhost/db", "must be percent-encoded"),
        ("postgresql://u:1234#secret@localhost/db", "must be percent-encoded"),
        ("host=localhost password=hunter2secret keepalives=1", "keepalives"),
    ],
)
def test_a_malformed_connection_string_is_exit_2_without_its_password(
    tmp_path: Path, setting: str, message: str
) -> None:
    from tests.conftest import CDT

    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "migration_2024_01_01_00_00_01_x.py").write_text(
        _migration("pass"), encoding="utf-8"
    )
    env = {**clean_environ(), "CLANDESTINO_MIGRATION_REPO": "postgres", SETTING: setting}

    result = subprocess.run([CDT, "-m"], cwd=tmp_path, env=env, capture_output=True, text=True)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    for secret in (PASSWORD, "hunter2", "secret", "1234"):
        assert secret not in output
    assert "Traceback" not in output


def test_a_parsed_target_renders_itself_masked() -> None:
    from clandestino_postgres.connect import ConnectionTarget

    for setting in (
        f"host=db.example user=u password={KV_PASSWORD} dbname=app",
        "postgresql://u:hunter2@db.example/app",
    ):
        target = ConnectionTarget.parse(setting, 5.0)
        shown = [repr(target), str(target), f"{target}", f"{target!r:>80}", repr(target.dsn)]
        for text in shown:
            assert "hunter2" not in text and "secret" not in text and "***" in text
    target = ConnectionTarget.parse(f"host=db.example user=u password={KV_PASSWORD}", 5.0)
    assert target.where == "db.example:5432/(default)" and target.user == "u"
    assert parse_qs(urlsplit(target.dsn.reveal()).query)["host"] == ["db.example"]
    assert urlsplit(target.dsn.reveal()).password is not None
