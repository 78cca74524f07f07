"""What only PostgreSQL has: the original's psycopg-style files, transactional = False, the
advisory lock and its holder, the statement count of a no-op run, and connection errors."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.conftest import Project, clean_environ, skip_outside_ci
from tests.harness import PostgresHarness, _pg
from tests.servers.postgres import AUTH_ROLES, PASSWORD_ROLE, TEST_URL

PASSWORD = "p@ss:w/rd% ü#?&="


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


def _url_as(url: str, user: str, password: str | None, host_port: str | None = None) -> str:
    parts = urlsplit(url)
    host = host_port if host_port is not None else (parts.netloc.rpartition("@")[2])
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


ORIGINAL_CURSOR_FILE = textwrap.dedent(
    """\
    from clandestino_interfaces import AbstractMigration
    from clandestino_postgres.infra import PostgresInfra


    class Migration(AbstractMigration):

        infra = PostgresInfra()

        async def up(self) -> None:
            \"\"\"Do modifications in database\"\"\"
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("CREATE TABLE things (name varchar, size int)")
                await cursor.execute(
                    "INSERT INTO things (name, size) VALUES (%s, %s), (%s, %s)", ["a", 1, "b", 2]
                )
                await cursor.execute("SELECT name FROM things WHERE size > %s ORDER BY name", [0])
                assert await cursor.fetchone() == ("a",)
                assert await cursor.fetchall() == [("b",)]
                await cursor.execute("SELECT '100%%' AS pct, %(n)s::int AS n", {"n": 7})
                assert await cursor.fetchone() == ("100%", 7)
                await cursor.execute(
                    "INSERT INTO things VALUES ('c', 3); INSERT INTO things VALUES ('d', 4)"
                )

        async def down(self) -> None:
            \"\"\"Undo modifications in database\"\"\"
            async with self.infra.get_cursor() as cursor:
                await cursor.execute("DROP TABLE things")
    """
)


def test_a_file_generated_by_the_original_runs_unchanged_in_the_records_transaction(
    pg: Project,
) -> None:
    pg.add(ORIGINAL_CURSOR_FILE, "original")
    failing = pg.add(
        textwrap.dedent(
            """\
            from clandestino_interfaces import AbstractMigration
            from clandestino_postgres.infra import PostgresInfra


            class Migration(AbstractMigration):
                infra = PostgresInfra()

                async def up(self) -> None:
                    async with self.infra.get_cursor() as cursor:
                        await cursor.execute("CREATE TABLE other_things (name varchar)")
                        await cursor.execute("INSERT INTO other_things VALUES (%s)", ["x"])
                        raise RuntimeError("late failure")

                async def down(self) -> None:
                    pass
            """
        ),
        "failing",
    )

    result = pg.cdt("-m")

    assert result.returncode == 1
    harness = _harness(pg)
    assert harness.query("SELECT name FROM things ORDER BY name") == [
        ("a",),
        ("b",),
        ("c",),
        ("d",),
    ]
    assert harness.query("SELECT to_regclass('other_things')") == [(None,)]
    assert failing.stem not in harness.records() and len(harness.records()) == 1


def test_transactional_false_allows_create_index_concurrently(pg: Project) -> None:
    pg.add_effect("table_first")
    pg.add(
        textwrap.dedent(
            """\
            from clandestino_interfaces import AbstractMigration
            from clandestino_postgres.infra import PostgresInfra


            class Migration(AbstractMigration):
                infra = PostgresInfra()
                transactional = False

                async def up(self) -> None:
                    async with self.infra.connection() as conn:
                        await conn.execute("CREATE INDEX CONCURRENTLY effects_tag ON effects (tag)")

                async def down(self) -> None:
                    async with self.infra.connection() as conn:
                        await conn.execute("DROP INDEX CONCURRENTLY effects_tag")
            """
        ),
        "concurrent_index",
    )

    applied = pg.cdt("-m")
    assert applied.returncode == 0, applied.stderr
    index = "SELECT indexname FROM pg_indexes WHERE indexname = 'effects_tag'"
    assert _harness(pg).query(index) == [("effects_tag",)]
    assert len(_harness(pg).records()) == 2

    undone = pg.cdt("-rm", "-y")
    assert undone.returncode == 0, undone.stderr
    assert _harness(pg).query(index) == []


def _hold_lock(url: str, key_text: str, ready: asyncio.Event, release: asyncio.Event) -> Any:
    async def hold() -> int:
        import asyncpg

        connection = await asyncpg.connect(url, server_settings={"application_name": "test-holder"})
        await connection.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key_text)
        ready.set()
        await release.wait()
        await connection.close()
        return 0

    return hold()


def test_a_held_lock_is_waited_for_named_and_timed_out(pg: Project) -> None:
    pg.add_effect("blocked")
    harness = _harness(pg)

    async def scenario() -> tuple[int, bytes, bytes]:
        ready, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold_lock(harness.url, "public.clandestino", ready, release))
        await ready.wait()
        process = await asyncio.create_subprocess_exec(
            str(Path(__import__("sys").executable).with_name("cdt")),
            "-m",
            cwd=pg.root,
            env={**pg.env, "CLANDESTINO_LOCK_TIMEOUT": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        release.set()
        await holder
        assert process.returncode is not None
        return process.returncode, out, err

    code, out, err = asyncio.run(scenario())

    assert code == 3
    assert "waiting for the lock held by pid" in out.decode()
    assert "(test-holder) since" in out.decode()
    assert "stayed held by pid" in err.decode() and "(test-holder)" in err.decode()
    assert harness.effects() == []
    assert pg.cdt("-m").returncode == 0
    assert harness.effects() == ["blocked"]


def test_a_schema_and_table_name_can_be_set(pg: Project) -> None:
    name = pg.add_effect("placed").stem

    result = pg.cdt(
        "-m",
        env={"CLANDESTINO_POSTGRES_SCHEMA": "deploys", "CLANDESTINO_CONTROL_TABLE": "history"},
    )

    assert result.returncode == 0, result.stderr
    assert _harness(pg).query("SELECT migration_name FROM deploys.history") == [(name,)]
    assert not _harness(pg).control_exists()


def _statement_count(admin_url: str, database: str) -> int:
    async def count(connection: Any) -> int:
        return int(
            await connection.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
                database,
            )
        )

    return _pg(admin_url, count)


@pytest.mark.parametrize("applied", [10, 1000])
def test_a_no_op_run_sends_a_constant_number_of_statements(
    pg: Project, postgres_url: str, applied: int
) -> None:
    try:
        _pg(postgres_url, lambda c: c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        _pg(postgres_url, lambda c: c.fetchval("SELECT count(*) FROM pg_stat_statements"))
    except Exception as exc:  # the user's own server may not preload the extension
        skip_outside_ci(f"this server cannot count statements: {exc}")
    empty = (Path(__file__).parents[1] / "clandestino" / "templates" / "empty.py").read_text()
    for _ in range(applied):
        pg.add(empty)
    assert pg.cdt("-m").returncode == 0
    _pg(postgres_url, lambda c: c.execute("SELECT pg_stat_statements_reset()"))

    result = pg.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert f"Done: 0 applied, {applied} skipped" in result.stdout
    assert _statement_count(postgres_url, _harness(pg).database) == 1


@pytest.fixture
def password_role(postgres_url: str) -> str:
    async def create(connection: Any) -> None:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", PASSWORD_ROLE
        )
        verb = "ALTER" if exists else "CREATE"
        escaped = PASSWORD.replace("'", "''")
        await connection.execute(f"{verb} ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{escaped}'")

    _pg(postgres_url, create)
    return PASSWORD_ROLE


def test_special_characters_in_the_password_work(pg: Project, password_role: str) -> None:
    url = _url_as(_harness(pg).url, password_role, PASSWORD)
    pg.add_effect("x")

    listing = pg.cdt("-lm", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url})

    assert listing.returncode == 0, listing.stderr
    assert PASSWORD not in listing.stdout + listing.stderr
    assert quote(PASSWORD, safe="") not in listing.stdout + listing.stderr


def _refused(pg: Project, url: str) -> Any:
    pg.add_effect("never")
    return pg.cdt("-m", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url})


def test_a_wrong_password_is_exit_3(pg: Project, password_role: str) -> None:
    url = _url_as(_harness(pg).url, password_role, "not-the-password")
    probe = pg.cdt("-lm", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url})
    if probe.returncode == 0:
        skip_outside_ci("this server lets the role in without checking its password")

    result = _refused(pg, url)

    assert result.returncode == 3
    assert f"refused the password of user {password_role}" in result.stderr
    assert "not-the-password" not in result.stderr
    assert not _harness(pg).control_exists()


def test_permission_denied_on_creating_the_table_is_exit_3(pg: Project, password_role: str) -> None:
    result = _refused(pg, _url_as(_harness(pg).url, password_role, PASSWORD))

    assert result.returncode == 3
    assert "permission denied to create the control table" in result.stderr
    assert not _harness(pg).control_exists() and _harness(pg).effects() == []


def test_a_missing_database_is_exit_3(pg: Project) -> None:
    url = urlunsplit(urlsplit(_harness(pg).url)._replace(path="/no_such_database_here"))

    result = _refused(pg, url)

    assert result.returncode == 3
    assert "the database does not exist" in result.stderr


def test_an_unreachable_server_is_exit_3_within_the_timeout(pg: Project) -> None:
    result = pg.cdt(
        "-m",
        env={
            "CLANDESTINO_POSTGRES_CONNECTION_STRING": "postgresql://u:secret@127.0.0.1:1/db",
            "CLANDESTINO_CONNECT_TIMEOUT": "3",
        },
        timeout=30,
    )

    assert result.returncode == 3
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/db" in result.stderr
    assert "secret" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "must start with postgresql://"),
        ("postgresql://u@host:notaport/db", "is malformed"),
        ("", "CLANDESTINO_POSTGRES_CONNECTION_STRING is not set"),
    ],
)
def test_a_malformed_url_is_exit_2(tmp_path: Path, url: str, message: str) -> None:
    import subprocess

    from tests.conftest import CDT

    (tmp_path / "migrations").mkdir()
    env = {
        **clean_environ(),
        "CLANDESTINO_MIGRATION_REPO": "postgres",
        "CLANDESTINO_POSTGRES_CONNECTION_STRING": url,
    }

    result = subprocess.run([CDT, "-m"], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert result.returncode == 2
    assert message in result.stderr


def test_ssl_parameters_in_the_url_are_accepted(pg: Project) -> None:
    pg.add_effect("tls")
    url = _harness(pg).url
    url += ("&" if "?" in url else "?") + "sslmode=prefer"

    result = pg.cdt("-m", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url})

    assert result.returncode == 0, result.stderr
    assert "sslmode=prefer" in result.stdout
    assert _harness(pg).effects() == ["tls"]


def test_cancelling_the_task_rolls_back_and_frees_the_lock(
    pg: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clandestino import migrate

    slow = pg.add_effect("cancelled", sleep=60)
    harness = _harness(pg)
    for name, value in harness.env().items():
        monkeypatch.setenv(name, value)

    async def start_then_cancel() -> None:
        task = asyncio.create_task(migrate(migrations_dir=pg.migrations, on_event=lambda e: None))
        while not harness.started_marker("cancelled").exists():
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_cancel())

    assert harness.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert harness.effects() == [] and slow.stem not in harness.records()
    again = pg.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert harness.effects() == ["cancelled"]


ASCII_PASSWORD = "plain-ascii:pass@word"


@pytest.fixture(params=sorted(AUTH_ROLES), ids=str)
def auth_role(request: pytest.FixtureRequest, postgres_url: str) -> str:
    """A role that the server asks for its password by the method in the parameter."""
    role = AUTH_ROLES[request.param]

    async def create(connection: Any) -> None:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if request.param == "md5" and not os.environ.get(TEST_URL):
            # Our server asks this role for md5, which needs an md5 hash stored. A user's own
            # server asks by its own pg_hba.conf, so there the role keeps the default hash.
            await connection.execute("SET password_encryption = 'md5'")
        verb = "ALTER" if exists else "CREATE"
        await connection.execute(f"{verb} ROLE {role} LOGIN PASSWORD '{ASCII_PASSWORD}'")

    _pg(postgres_url, create)
    return role


def test_each_password_method_logs_in_and_a_wrong_password_is_one_line(
    pg: Project, auth_role: str
) -> None:
    url = _url_as(_harness(pg).url, auth_role, ASCII_PASSWORD)
    wrong = _url_as(_harness(pg).url, auth_role, "not-it")
    if pg.cdt("-lm", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": wrong}).returncode == 0:
        skip_outside_ci("this server lets the role in without checking its password")
    name = pg.add_effect("x").stem
    # Since PostgreSQL 15 only the owner may create in the public schema.
    _pg(_harness(pg).url, lambda c: c.execute(f"GRANT ALL ON SCHEMA public TO {auth_role}"))
    assert pg.cdt("-m", env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url}).returncode == 0
    assert _harness(pg).records() == [name]

    for args in (["-m"], ["-lm"]):
        refused = pg.cdt(*args, env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": wrong})
        assert refused.returncode == 3
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"refused the password of user {auth_role}" in errors[0]
        assert "not-it" not in refused.stderr


def test_a_server_that_never_answers_is_exit_3_after_one_timeout(pg: Project) -> None:
    import socket
    import time

    pg.add_effect("never")
    with socket.socket() as silent:
        # Connections complete in the listen backlog, and then nothing is ever said on them.
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        url = f"postgresql://app:secret@127.0.0.1:{port}/app"
        started = time.monotonic()
        result = pg.cdt(
            "-m",
            env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url, "CLANDESTINO_CONNECT_TIMEOUT": "3"},
            timeout=60,
        )
        took = time.monotonic() - started

    assert result.returncode == 3
    assert f"PostgreSQL at 127.0.0.1:{port}/app did not answer within 3 s" in result.stderr
    assert "secret" not in result.stderr
    # One timeout, not one per attempt or per client.
    assert took < 5.5


@pytest.mark.parametrize("sslmode", ["prefer", "disable"])
def test_another_service_on_the_port_is_one_line_and_exit_3(pg: Project, sslmode: str) -> None:
    import socket
    import threading

    pg.add_effect("never")
    with socket.socket() as http:
        http.bind(("127.0.0.1", 0))
        http.listen()
        port = http.getsockname()[1]

        def answer_like_a_web_server() -> None:
            while True:
                try:
                    client, _ = http.accept()
                except OSError:
                    return
                with client:
                    client.recv(1024)
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer_like_a_web_server, daemon=True).start()
        url = f"postgresql://app:secret@127.0.0.1:{port}/app?sslmode={sslmode}"
        result = pg.cdt(
            "-m",
            env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": url, "CLANDESTINO_CONNECT_TIMEOUT": "5"},
            timeout=60,
        )

    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}/app" in errors[0]
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
