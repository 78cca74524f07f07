"""Fleets on real servers: many targets of every kind, one made to fail, several runners at once.

Each test asserts what a user checks: the effects counted in each target's own store, the exit
code, the JSON and the lines printed.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CDT, clean_environ
from tests.harness import _pg, _with_database

MIGRATION = """
import asyncio
from pathlib import Path

from clandestino_interfaces import AbstractMigration
{header}


class Migration(AbstractMigration):
    infra = {infra}

    async def up(self) -> None:
        barrier = Path({barrier!r})
        if {barrier!r}:
            Path(f"{{barrier}}.reached.{{self.target.name}}.{{__import__('os').getpid()}}").touch()
            while not barrier.exists():
                await asyncio.sleep(0.02)
        async with {opening}:
{body}

    async def down(self) -> None:
        async with {opening}:
{undo}
"""


def _indent(lines: list[str]) -> str:
    return "\n".join(f"            {line}" for line in lines)


@dataclass
class Kind:
    """One kind of target: its settings, its migrations' code, and a direct look at its data."""

    name: str
    size: int
    env: dict[str, str]
    header: str
    infra: str
    opening: str
    body: Callable[[str], list[str]]
    undo: Callable[[str], list[str]]
    effects: Callable[[str], int]
    poison: Callable[[str, bool], None]
    names: list[str]


class Fleet:
    def __init__(self, root: Path, kind: Kind) -> None:
        self.root = root
        self.kind = kind
        (root / "migrations").mkdir(parents=True)
        self.env = {**clean_environ(), **kind.env}
        self.count = 0

    def add(self, tag: str, barrier: Path | None = None) -> None:
        self.count += 1
        kind = self.kind
        source = MIGRATION.format(
            header=kind.header,
            infra=kind.infra,
            opening=kind.opening,
            body=_indent(kind.body(tag)),
            undo=_indent(kind.undo(tag)),
            barrier=str(barrier or ""),
        )
        name = f"migration_2024_01_01_00_00_{self.count:02d}_{tag}.py"
        (self.root / "migrations" / name).write_text(source)

    def write_targets(self, lines: list[str] | None = None) -> None:
        text = "# the fleet\n" + "\n".join(lines or self.kind.names) + "\n"
        (self.root / "targets.txt").write_text(text)

    def cdt(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CDT, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CDT, *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# --- the four kinds ---------------------------------------------------------------------------


def _postgres(url: str, size: int) -> Kind:
    database = f"fleet_{uuid.uuid4().hex[:10]}"
    _pg(url, lambda c: c.execute(f'CREATE DATABASE "{database}"'))
    own = _with_database(url, database)
    names = [f"tenant_{i:03d}" for i in range(size)]

    def effects(name: str) -> int:
        async def count(c: Any) -> int:
            exists = await c.fetchval("SELECT to_regclass($1)", f'"{name}".effects')
            return int(await c.fetchval(f'SELECT count(*) FROM "{name}".effects')) if exists else 0

        return _pg(own, count)

    def poison(name: str, on: bool) -> None:
        statement = (
            f'CREATE SCHEMA IF NOT EXISTS "{name}"; CREATE TABLE "{name}".poison (x int)'
            if on
            else f'DROP TABLE "{name}".poison'
        )
        _pg(own, lambda c: c.execute(statement))

    return Kind(
        name="postgres",
        size=size,
        env={
            "CLANDESTINO_MIGRATION_REPO": "POSTGRES",
            "CLANDESTINO_POSTGRES_CONNECTION_STRING": own,
        },
        header="from clandestino_postgres.infra import PostgresInfra",
        infra="PostgresInfra()",
        opening="self.infra.connection() as conn",
        # Unqualified names: the target's search_path puts them in its schema.
        body=lambda tag: [
            "if await conn.fetchval(\"SELECT to_regclass('poison')\"):",
            "    raise RuntimeError('poisoned: its data differs')",
            'await conn.execute("CREATE TABLE IF NOT EXISTS effects (tag text)")',
            f'await conn.execute("INSERT INTO effects VALUES ($1)", {tag!r})',
        ],
        undo=lambda tag: [f'await conn.execute("DELETE FROM effects WHERE tag = $1", {tag!r})'],
        effects=effects,
        poison=poison,
        names=names,
    )


def _mongo(url: str, size: int) -> Kind:
    from pymongo import MongoClient

    prefix = f"f{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{i:03d}" for i in range(size)]
    client: Any = MongoClient(url, serverSelectionTimeoutMS=20_000)

    def poison(name: str, on: bool) -> None:
        if on:
            client[name].poison.insert_one({"x": 1})
        else:
            client[name].poison.drop()

    return Kind(
        name="mongo",
        size=size,
        env={
            "CLANDESTINO_MIGRATION_REPO": "MONGO",
            "CLANDESTINO_MONGO_CONNECTION_STRING": f"{url}/{prefix}_control",
        },
        header="from clandestino_mongo.infra import MongoInfra",
        infra="MongoInfra()",
        opening="self.infra.get_database() as db",
        body=lambda tag: [
            "if await db.poison.count_documents({}):",
            "    raise RuntimeError('poisoned: its data differs')",
            f"await db.effects.insert_one({{'tag': {tag!r}}}, session=self.infra.session)",
        ],
        undo=lambda tag: [f"await db.effects.delete_many({{'tag': {tag!r}}})"],
        effects=lambda name: int(client[name].effects.count_documents({})),
        poison=poison,
        names=names,
    )


def _elasticsearch(url: str, size: int) -> Kind:
    from elasticsearch import Elasticsearch

    prefix = f"f{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{i:03d}" for i in range(size)]
    client = Elasticsearch(url, request_timeout=60)

    def effects(name: str) -> int:
        index = f"{name}_effects"
        if not client.indices.exists(index=index):
            return 0
        client.indices.refresh(index=index)
        return int(client.count(index=index)["count"])

    def poison(name: str, on: bool) -> None:
        if on:
            client.indices.create(index=f"{name}_poison")
        else:
            client.indices.delete(index=f"{name}_poison")

    return Kind(
        name="elasticsearch",
        size=size,
        env={
            "CLANDESTINO_MIGRATION_REPO": "ELASTICSEARCH",
            "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url,
            "CLANDESTINO_CONTROL_TABLE": "ctl",
        },
        header="from clandestino_elasticsearch.infra import ElasticsearchInfra",
        infra="ElasticsearchInfra()",
        opening="self.infra.get_client() as es",
        # The migration names its indices from the target it runs for.
        body=lambda tag: [
            "if await es.indices.exists(index=f'{self.target.name}_poison'):",
            "    raise RuntimeError('poisoned: its data differs')",
            f"await es.index(index=f'{{self.target.name}}_effects', document={{'tag': {tag!r}}},"
            " refresh=True)",
        ],
        undo=lambda tag: ["pass"],
        effects=effects,
        poison=poison,
        names=names,
    )


def _sqlite(root: Path, size: int) -> Kind:
    names = [f"shop_{i:03d}" for i in range(size)]

    def effects(name: str) -> int:
        path = root / f"{name}.db"
        if not path.exists():
            return 0
        with sqlite3.connect(path) as c:
            found = c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'effects'")
            if not found.fetchone()[0]:
                return 0
            return int(c.execute("SELECT count(*) FROM effects").fetchone()[0])

    def poison(name: str, on: bool) -> None:
        with sqlite3.connect(root / f"{name}.db") as c:
            c.execute("CREATE TABLE poison (x int)" if on else "DROP TABLE poison")

    return Kind(
        name="sqlite",
        size=size,
        env={},
        header="from clandestino_sqlite.infra import SQLiteInfra",
        infra="SQLiteInfra()",
        opening="self.infra.get_cursor() as cursor",
        body=lambda tag: [
            "if cursor.execute(\"SELECT count(*) FROM sqlite_master WHERE name = 'poison'\")"
            ".fetchone()[0]:",
            "    raise RuntimeError('poisoned: its data differs')",
            'cursor.execute("CREATE TABLE IF NOT EXISTS effects (tag text)")',
            f'cursor.execute("INSERT INTO effects VALUES (?)", [{tag!r}])',
        ],
        undo=lambda tag: [f'cursor.execute("DELETE FROM effects WHERE tag = ?", [{tag!r}])'],
        effects=effects,
        poison=poison,
        names=names,
    )


KINDS = ["postgres", "mongo", "elasticsearch", "sqlite"]
SIZES = {"postgres": 50, "mongo": 20, "elasticsearch": 10, "sqlite": 12}


@pytest.fixture(params=KINDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    name = request.param
    size = SIZES[name]
    root = tmp_path / "project"
    if name == "sqlite":
        kind = _sqlite(root, size)
    else:
        url = request.getfixturevalue(f"{name}_url")
        kind = {"postgres": _postgres, "mongo": _mongo, "elasticsearch": _elasticsearch}[name](
            url, size
        )
    yield Fleet(root, kind)


@pytest.fixture
def pg_fleet(postgres_url: str, tmp_path: Path) -> Fleet:
    return Fleet(tmp_path / "project", _postgres(postgres_url, 24))


# --- the tests --------------------------------------------------------------------------------


def test_one_failed_target_leaves_the_others_applied_and_failed_reruns_only_it(
    fleet: Fleet,
) -> None:
    kind = fleet.kind
    fleet.add("one")
    fleet.add("two")
    fleet.write_targets()
    bad = kind.names[3]
    kind.poison(bad, True)

    run = fleet.cdt("-m", "--fleet", "--targets", "targets.txt", "--json", "--concurrency", "4")

    assert run.returncode == 1, run.stderr
    seen = events(run.stdout)
    assert all("target" in event for event in seen)
    last = seen[-1]
    assert last["event"] == "fleet_finished"
    assert last["failed"] == [bad]
    assert [row["target"] for row in last["matrix"]] == kind.names
    assert "poisoned" in last["matrix"][3]["error"]
    for name in kind.names:
        assert kind.effects(name) == (0 if name == bad else 2), name

    # The matrix agrees with the store.
    listed = fleet.cdt("-lm", "--fleet", "--targets", "targets.txt", "--json", "--check")
    assert listed.returncode == 1
    matrix = {row["target"]: row["state"] for row in events(listed.stdout)[-1]["matrix"]}
    for name in kind.names:
        expected = 0 if name == bad else 2
        assert matrix[name]["applied"] == expected == kind.effects(name), name
        assert matrix[name]["pending"] == 2 - expected

    kind.poison(bad, False)
    again = fleet.cdt("-m", "--failed", "--targets", "targets.txt", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    touched = {e["target"] for e in events(again.stdout) if e.get("target")}
    assert touched == {bad}
    for name in kind.names:
        assert kind.effects(name) == 2, name
    clean = fleet.cdt("-lm", "--fleet", "--targets", "targets.txt", "--check")
    assert clean.returncode == 0, clean.stdout
    nothing = fleet.cdt("-m", "--failed", "--targets", "targets.txt")
    assert "Fleet of 0" in nothing.stdout


@pytest.mark.parametrize("name", KINDS)
def test_failed_on_one_machine_is_rerun_by_a_runner_on_another(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two runners in working directories of their own (two machines) share a fleet: the target
    runner A failed is exactly the one runner B's `--failed` runs; neither keeps a local file."""
    import shutil

    size = 6
    shared = tmp_path / "shared"
    if name == "sqlite":
        kind = _sqlite(shared, size)
    else:
        kind = {"postgres": _postgres, "mongo": _mongo, "elasticsearch": _elasticsearch}[name](
            request.getfixturevalue(f"{name}_url"), size
        )
    a, b = Fleet(tmp_path / "machine_a", kind), Fleet(tmp_path / "machine_b", kind)
    a.add("one")
    a.add("two")
    shutil.copytree(a.root / "migrations", b.root / "migrations", dirs_exist_ok=True)
    if name == "sqlite":
        # The files are the fleet: the targets file lives beside them, on storage both share.
        shared.mkdir(parents=True, exist_ok=True)
        targets = shared / "targets.txt"
        targets.write_text("".join(f"{n} {shared / n}.db\n" for n in kind.names))
    else:
        for runner in (a, b):
            runner.write_targets()
        targets = Path("targets.txt")
    bad = kind.names[2]
    kind.poison(bad, True)

    first = a.cdt("-m", "--fleet", "--targets", str(targets))
    assert first.returncode == 1, first.stdout + first.stderr
    assert [kind.effects(n) for n in kind.names] == [0 if n == bad else 2 for n in kind.names]

    kind.poison(bad, False)
    again = b.cdt("-m", "--failed", "--targets", str(targets), "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {e["target"] for e in events(again.stdout) if e.get("target")} == {bad}
    assert [kind.effects(n) for n in kind.names] == [2] * size

    # B's success is A's news too, and nothing was kept on either machine alone.
    for runner in (a, b):
        nothing = runner.cdt("-m", "--failed", "--targets", str(targets))
        assert nothing.returncode == 0 and "Fleet of 0" in nothing.stdout, nothing.stdout
        assert not (runner.root / ".clandestino-fleet.json").exists()
    # The outcomes are no migration of any target's.
    clean = b.cdt("-lm", "--fleet", "--targets", str(targets), "--check", "--json")
    assert clean.returncode == 0, clean.stdout
    rows = events(clean.stdout)[-1]["matrix"]
    assert [row["state"]["applied"] for row in rows] == [2] * size


def test_without_a_terminal_one_line_per_target_then_a_summary_naming_the_failed(
    pg_fleet: Fleet,
) -> None:
    kind = pg_fleet.kind
    pg_fleet.add("one")
    pg_fleet.write_targets()
    kind.poison(kind.names[5], True)

    run = pg_fleet.cdt("-m", "--fleet", "--targets", "targets.txt")

    assert run.returncode == 1
    lines = run.stdout.splitlines()
    outcome_lines = [line for line in lines if line.split(":")[0] in kind.names]
    assert sorted(line.split(":")[0] for line in outcome_lines) == kind.names
    assert f"  FAILED {kind.names[5]}: " in run.stdout
    assert run.stdout.count("FAILED") == 2  # its own line, and the summary's
    assert f"Fleet of {len(kind.names)}: {len(kind.names) - 1} applied" in run.stdout


@pytest.mark.parametrize("runners", [2, 3])
def test_several_runners_share_a_fleet_each_target_applied_exactly_once(
    pg_fleet: Fleet, tmp_path: Path, runners: int
) -> None:
    kind = pg_fleet.kind
    barrier = tmp_path / "go"
    pg_fleet.add("one", barrier=barrier)
    pg_fleet.add("two")
    pg_fleet.write_targets()
    concurrency = 2
    args = ("-m", "--fleet", "--targets", "targets.txt", "--json", "--concurrency", "2")
    started = [pg_fleet.start(*args) for _ in range(runners)]
    # Every runner holds `concurrency` targets at the barrier at once: they overlap, and each
    # got there only by moving past the targets the others held.
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.reached.*"))) < runners * concurrency:
        assert time.monotonic() < deadline, "the runners never all reached the barrier"
        assert all(p.poll() is None for p in started), [p.communicate() for p in started]
        time.sleep(0.05)
    barrier.touch()
    results = [p.communicate(timeout=300) for p in started]

    assert [p.returncode for p in started] == [0] * runners, results
    applied_by: dict[str, int] = dict.fromkeys(kind.names, 0)
    for out, _ in results:
        matrix = events(out)[-1]["matrix"]
        assert [row["target"] for row in matrix] == kind.names  # each accounts for every target
        for row in matrix:
            assert row["status"] in {"applied", "up_to_date", "by_other_runner"}
            applied_by[row["target"]] += row["status"] == "applied"
    assert applied_by == dict.fromkeys(kind.names, 1)
    assert {name: kind.effects(name) for name in kind.names} == dict.fromkeys(kind.names, 2)
    others = sum(
        row["status"] == "by_other_runner"
        for out, _ in results
        for row in events(out)[-1]["matrix"]
    )
    assert others >= 1


def test_a_runner_killed_mid_fleet_loses_nothing(pg_fleet: Fleet, tmp_path: Path) -> None:
    kind = pg_fleet.kind
    barrier = tmp_path / "never"
    pg_fleet.add("one", barrier=barrier)
    pg_fleet.write_targets()
    runner = pg_fleet.start("-m", "--fleet", "--targets", "targets.txt", "--concurrency", "3")
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("never.reached.*"))) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runner.send_signal(signal.SIGKILL)
    runner.communicate()
    barrier.touch()

    again = pg_fleet.cdt("-m", "--fleet", "--targets", "targets.txt", "--json")

    assert again.returncode == 0, again.stdout + again.stderr
    assert {name: kind.effects(name) for name in kind.names} == dict.fromkeys(kind.names, 1)


def test_an_unreachable_target_is_one_failed_target(pg_fleet: Fleet) -> None:
    kind = pg_fleet.kind
    pg_fleet.add("one")
    gone = "postgresql://nobody:secret@127.0.0.1:9/nowhere"
    pg_fleet.write_targets([*kind.names[:5], f"lost {gone}"])

    run = pg_fleet.cdt(
        "-m",
        "--fleet",
        "--targets",
        "targets.txt",
        "--json",
        env={"CLANDESTINO_CONNECT_TIMEOUT": "2"},
    )

    assert run.returncode == 1
    last = events(run.stdout)[-1]
    assert last["failed"] == ["lost"]
    assert "secret" not in run.stdout + run.stderr
    assert [kind.effects(name) for name in kind.names[:5]] == [1] * 5


def test_query_and_callable_sources_and_target_filters(tmp_path: Path) -> None:
    root = tmp_path / "project"
    kind = _sqlite(root, 4)
    fleet = Fleet(root, kind)
    fleet.add("one")
    for name in kind.names:
        sqlite3.connect(root / f"{name}.db").close()
    (root / "tenants.py").write_text(
        "async def names():\n    return ['shop_001', ('shop_002', 'shop_002.db')]\n"
    )

    by_query = fleet.cdt("-m", "--fleet", "--targets-query", "shop_00[03].db", "--json")
    assert by_query.returncode == 0, by_query.stderr
    assert [r["target"] for r in events(by_query.stdout)[-1]["matrix"]] == ["shop_000", "shop_003"]
    by_callable = fleet.cdt("-m", "--targets-from", "tenants:names", "--only", "shop_002", "--json")
    assert by_callable.returncode == 0, by_callable.stderr
    assert [r["target"] for r in events(by_callable.stdout)[-1]["matrix"]] == ["shop_002"]
    assert [kind.effects(n) for n in kind.names] == [1, 0, 1, 1]
    typo = fleet.cdt("-m", "--targets-from", "tenants:names", "--target", "shop_009")
    assert typo.returncode == 2
    assert "not in the fleet: shop_009" in typo.stderr + typo.stdout


def test_rollback_over_a_fleet_asks_once_then_undoes_each(tmp_path: Path) -> None:
    root = tmp_path / "project"
    kind = _sqlite(root, 3)
    fleet = Fleet(root, kind)
    fleet.add("one")
    fleet.add("two")
    fleet.write_targets()
    assert fleet.cdt("-m", "--fleet", "--targets", "targets.txt").returncode == 0

    unasked = fleet.cdt("-rm", "--fleet", "--targets", "targets.txt")
    assert unasked.returncode == 2
    assert [kind.effects(n) for n in kind.names] == [2, 2, 2]
    done = fleet.cdt("-rm", "--fleet", "--targets", "targets.txt", "-y")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [kind.effects(n) for n in kind.names] == [1, 1, 1]


def test_a_bad_targets_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "project"
    fleet = Fleet(root, _sqlite(root, 1))
    (root / "targets.txt").write_text("a\nb postgresql://u:hunter2@h/db extra\n")
    run = fleet.cdt("-m", "--targets", "targets.txt")
    assert run.returncode == 2
    assert "targets.txt, line 2" in run.stderr
    assert "hunter2" not in run.stderr
    assert "Traceback" not in run.stderr


# --- one target, pooled connections ---------------------------------------------------------

TARGET_SEEN = """
from clandestino_interfaces import AbstractMigration
{header}


class Migration(AbstractMigration):
    infra = {infra}

    async def up(self) -> None:
        async with {opening}:
            {write}

    async def down(self) -> None:
        pass
"""


def _single_project(root: Path, header: str, infra: str, opening: str, write: str) -> None:
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "migration_2024_01_01_00_00_01_seen.py").write_text(
        TARGET_SEEN.format(header=header, infra=infra, opening=opening, write=write)
    )


def test_a_run_without_a_fleet_gives_sqlite_migrations_their_target(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _single_project(
        root,
        "from clandestino_sqlite.infra import SQLiteInfra",
        "SQLiteInfra()",
        "self.infra.get_cursor() as cursor",
        "cursor.execute('CREATE TABLE seen AS SELECT ? AS name, ? AS kind',"
        " [self.target.name, self.target.kind])",
    )
    env = {"CLANDESTINO_MIGRATION_REPO": "SQLITE", "CLANDESTINO_SQLITE_DB_PATH": "shop.db"}

    run = subprocess.run(
        [CDT, "-m"], cwd=root, env={**clean_environ(), **env}, capture_output=True, text=True
    )

    assert run.returncode == 0, run.stdout + run.stderr
    with sqlite3.connect(root / "shop.db") as c:
        assert c.execute("SELECT name, kind FROM seen").fetchall() == [("shop", "sqlite-file")]


@pytest.mark.parametrize("schema", [None, "acme"])
def test_a_run_without_a_fleet_gives_postgres_migrations_their_target(
    postgres_url: str, tmp_path: Path, schema: str | None
) -> None:
    database = f"single_{uuid.uuid4().hex[:10]}"
    _pg(postgres_url, lambda c: c.execute(f'CREATE DATABASE "{database}"'))
    own = _with_database(postgres_url, database)
    root = tmp_path / "project"
    _single_project(
        root,
        "from clandestino_postgres.infra import PostgresInfra",
        "PostgresInfra()",
        "self.infra.connection() as conn",
        "await conn.execute('CREATE TABLE public.seen AS SELECT $1::text AS name,"
        " $2::text AS kind', self.target.name, self.target.kind)",
    )
    env = {"CLANDESTINO_MIGRATION_REPO": "POSTGRES", "CLANDESTINO_POSTGRES_CONNECTION_STRING": own}
    if schema:
        env["CLANDESTINO_POSTGRES_SCHEMA"] = schema

    run = subprocess.run(
        [CDT, "-m"], cwd=root, env={**clean_environ(), **env}, capture_output=True, text=True
    )

    assert run.returncode == 0, run.stdout + run.stderr
    seen = _pg(own, lambda c: c.fetch("SELECT name, kind FROM public.seen"))
    expected = (schema, "postgres-schema") if schema else (database, "postgres-database")
    assert [tuple(row) for row in seen] == [expected]


CONNECTIONS_SEEN = """
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute(
                "CREATE TABLE seen AS SELECT pg_backend_pid() AS pid, current_schema() AS schema,"
                " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                "  AND application_name LIKE 'clandestino%') AS sessions"
            )

    async def down(self) -> None:
        pass
"""


def test_a_fleet_of_100_schemas_borrows_at_most_concurrency_connections(
    postgres_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    kind = _postgres(postgres_url, 100)
    fleet = Fleet(root, kind)
    (root / "migrations" / "migration_2024_01_01_00_00_01_seen.py").write_text(CONNECTIONS_SEEN)
    fleet.write_targets()
    own = fleet.env["CLANDESTINO_POSTGRES_CONNECTION_STRING"]

    run = fleet.cdt("-m", "--fleet", "--targets", "targets.txt", "--concurrency", "4")

    assert run.returncode == 0, run.stdout + run.stderr
    union = " UNION ALL ".join(
        f'SELECT pid, schema, sessions FROM "{name}".seen' for name in kind.names
    )
    rows = _pg(own, lambda c: c.fetch(union))
    assert len(rows) == 100
    # Each migration ran in its own schema, on a connection the pool lent it ...
    assert sorted(row["schema"] for row in rows) == kind.names
    # ... at most 4 of them over the whole fleet, never one per target ...
    assert len({row["pid"] for row in rows}) <= 4
    # ... and the server never saw more sessions of the run than the concurrency.
    assert max(row["sessions"] for row in rows) <= 4 + 1


def test_a_pooled_connection_goes_back_without_its_lock_or_search_path(
    postgres_url: str, tmp_path: Path
) -> None:
    import asyncio

    from clandestino.api import settings_for
    from clandestino.events import Event
    from clandestino_postgres.connect import ConnectionTarget
    from clandestino_postgres.fleet import adapter
    from clandestino_postgres.pool import PostgresServers

    database = f"pool_{uuid.uuid4().hex[:10]}"
    _pg(postgres_url, lambda c: c.execute(f'CREATE DATABASE "{database}"'))
    own = _with_database(postgres_url, database)
    (tmp_path / "migrations").mkdir()
    settings = settings_for(None, "postgres", own, tmp_path)
    held: list[Event] = []

    async def run() -> tuple[int, int, str, int]:
        servers = PostgresServers(settings, 1)
        try:
            target = adapter.target(settings, "acme", None)
            store = servers.create_store(adapter.settings_for(settings, target), target, False)
            await store.open()
            try:
                async with store.lock(0.0, lambda holder: held.append(holder)):  # type: ignore[arg-type]
                    await store.ensure()
                    lent = store._conn.get_server_pid()  # type: ignore[attr-defined]
            finally:
                await store.aclose()
            where = ConnectionTarget.parse(own, 5)
            again = await servers.borrow(where, keep=True)
            try:
                path = await again.fetchval("SHOW search_path")
                locks = await again.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                )
                return lent, again.get_server_pid(), path, locks
            finally:
                await servers.give_back(where, again)
        finally:
            await servers.aclose()

    lent, reused, path, locks = asyncio.run(run())

    assert reused == lent  # the same session, back from the pool
    assert path == '"$user", public'
    assert locks == 0
    assert held == []


@pytest.mark.parametrize("name", ["mongo", "elasticsearch"])
def test_mongo_and_elasticsearch_targets_share_one_client_per_server(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from clandestino import api

    url = request.getfixturevalue(f"{name}_url")
    kind = _mongo(url, 12) if name == "mongo" else _elasticsearch(url, 12)
    fleet = Fleet(tmp_path / "project", kind)
    fleet.add("one")
    for key, value in fleet.env.items():
        monkeypatch.setenv(key, value)
    if name == "mongo":
        from clandestino_mongo.connect import MongoTarget as Where
    else:
        from clandestino_elasticsearch.connect import ElasticsearchTarget as Where  # type: ignore[assignment]
    made: list[object] = []
    original = Where.client

    def counted(self: Any, **options: Any) -> Any:
        # The lease's renewer runs in a thread with a loop of its own, and a client belongs to
        # one loop: only the run's own clients are shared.
        if threading.current_thread() is threading.main_thread():
            made.append(options)
        return original(self, **options)

    monkeypatch.setattr(Where, "client", counted)

    report = asyncio.run(api.migrate(cwd=fleet.root, fleet=kind.names))

    assert report.ok, [o.error for o in report.failed]
    assert report.count("applied") == 12
    assert [kind.effects(n) for n in kind.names] == [1] * 12
    # One client for the 12 targets on the server, one for the fleet's outcomes (--failed).
    assert len(made) == 2, made


def test_rollback_and_status_of_a_fleet_from_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from clandestino import api

    root = tmp_path / "project"
    kind = _sqlite(root, 3)
    fleet = Fleet(root, kind)
    fleet.add("one")
    fleet.add("two")
    for key in [k for k in __import__("os").environ if k.startswith("CLANDESTINO_")]:
        monkeypatch.delenv(key)
    asked: list[list[str]] = []

    async def work() -> tuple[Any, Any, Any, Any]:
        up = await api.migrate(cwd=root, fleet=kind.names)
        refused = await api.rollback(
            cwd=root, fleet=kind.names, confirm=lambda names: asked.append(names) or False
        )
        down = await api.rollback(cwd=root, fleet=kind.names, confirm=lambda names: True)
        listed = await api.status(cwd=root, fleet=kind.names)
        return up, refused, down, listed

    up, refused, down, listed = asyncio.run(work())

    assert up.count("applied") == 3
    assert refused.cancelled and asked == [kind.names]  # asked once, for the whole fleet
    assert [o.status for o in down.outcomes] == ["applied"] * 3
    assert [kind.effects(n) for n in kind.names] == [1, 1, 1]
    assert [(o.target, o.state.applied, o.state.pending) for o in listed.outcomes] == [
        (n, 1, 1) for n in kind.names
    ]


def test_help_lists_the_fleet_options() -> None:
    run = subprocess.run([CDT, "-h"], env=clean_environ(), capture_output=True, text=True)
    for option in ("--fleet", "--targets", "--concurrency", "--on-error", "--target ", "--only"):
        assert option in run.stdout, option
    assert "--failed" in run.stdout


def test_an_elasticsearch_index_pattern_finds_prefixes_without_control_indices(
    elasticsearch_url: str, tmp_path: Path
) -> None:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    group = f"t{uuid.uuid4().hex[:6]}"
    for index in (f"{group}_acme_orders", f"{group}_acme_users", f"{group}_globex_orders"):
        client.indices.create(index=index)
    kind = _elasticsearch(elasticsearch_url, 0)
    fleet = Fleet(tmp_path / "project", kind)
    fleet.add("one")

    found = fleet.cdt("-lm", "--targets-query", f"{group}_*", "--json")

    assert found.returncode == 0, found.stdout + found.stderr
    names = [row["target"] for row in events(found.stdout)[-1]["matrix"]]
    assert names == [f"{group}_acme", f"{group}_globex"]
    run = fleet.cdt("-m", "--targets-query", f"{group}_*", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [kind.effects(n) for n in names] == [1, 1]
    # Now their control indices exist: the same pattern finds the same two, and no more.
    again = fleet.cdt("-lm", "--targets-query", f"{group}_*", "--json")
    assert [row["target"] for row in events(again.stdout)[-1]["matrix"]] == names


SLOW_MIGRATION = """
import asyncio

from clandestino_interfaces import AbstractMigration


class Migration(AbstractMigration):
    async def up(self) -> None:
        await asyncio.sleep(0.8)

    async def down(self) -> None:
        pass
"""


def test_a_mongo_fleet_of_20_databases_opens_few_connections(
    mongo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own count of connections made, over a 20-database fleet run: the run's
    shared client and one renewal client for the whole fleet, not a renewal client per target."""
    import asyncio

    from pymongo import MongoClient

    from clandestino import api

    kind = _mongo(mongo_url, 20)
    fleet = Fleet(tmp_path / "project", kind)
    fleet.add("one")
    # Each step outlasts a few renewals (a lease of 1 s renews every 0.25 s): each target's
    # renewer does talk to the server.
    (fleet.root / "migrations" / "migration_2024_01_01_00_00_02_slow.py").write_text(SLOW_MIGRATION)
    for key, value in {**fleet.env, "CLANDESTINO_LOCK_LEASE": "1"}.items():
        monkeypatch.setenv(key, value)
    watcher: Any = MongoClient(mongo_url, maxPoolSize=1)

    def created() -> int:
        return int(watcher.admin.command("serverStatus")["connections"]["totalCreated"])

    before = created()
    report = asyncio.run(api.migrate(cwd=fleet.root, fleet=kind.names))
    opened = created() - before

    assert report.ok, [o.error for o in report.failed]
    assert [kind.effects(n) for n in kind.names] == [1] * 20
    print(f"connections opened for a 20-database MongoDB fleet: {opened}")
    # Per client: 2 monitoring connections and its pool's; the run has three clients (the
    # targets', the fleet's outcomes', the lease renewals'), whatever the fleet's size.
    assert opened <= 16, opened
