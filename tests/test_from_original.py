"""Moving from the original: projects laid out as the original's users have them, part applied
by the original tool itself (`clandestino==0.1.14` and its backend packages from PyPI, in a
virtualenv of their own), then switched to this project's `cdt`. Nothing may run again, and
`-lm`, `-lm --check` and `-rm` must agree on what is applied.

The virtualenv is kept under ~/.cache/clandestino-tests/, keyed by the versions, so later runs
start at once (CLANDESTINO_ORIGINAL_VENV names another).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CDT, clean_environ, skip_outside_ci, step_lines

ORIGINAL = [
    "clandestino==0.1.14",
    "clandestino-interfaces==0.1.1",
    "clandestino-sqlite==0.1.3",
    "clandestino-postgres==0.1.1",
    "clandestino-mongo==0.1.1",
    "clandestino-elasticsearch==0.1.1",
]


@pytest.fixture(scope="session")
def original_cdt() -> Path:
    """The original's `cdt`, installed once per set of versions."""
    return install_original(ORIGINAL)


def install_original(specs: list[str]) -> Path:
    """The `cdt` of a virtualenv holding `specs`, installed once per set of versions."""
    key = "-".join(spec.replace("clandestino", "c").replace("==", "") for spec in specs)
    default = Path.home() / ".cache" / "clandestino-tests" / f"original-{key}"
    given = os.environ.get("CLANDESTINO_ORIGINAL_VENV") if specs == ORIGINAL else None
    venv = Path(given or default)
    done = venv / "installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", *specs],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            skip_outside_ci(f"cannot install the original from PyPI: {pip.stderr[-300:]}")
        done.write_text("\n".join(specs))
    return venv / "bin" / "cdt"


SQLITE_EFFECT = """\
from clandestino_interfaces import AbstractMigration
from clandestino_sqlite.infra import SQLiteInfra
{imports}


class Migration(AbstractMigration):
    infra = SQLiteInfra()

    async def up(self) -> None:
        async with self.infra.get_cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS effects (tag TEXT)")
            cursor.execute("INSERT INTO effects VALUES (?)", [{tag}])

    async def down(self) -> None:
        async with self.infra.get_cursor() as cursor:
            cursor.execute("DELETE FROM effects WHERE tag = ?", [{tag}])
"""

OWN_CONNECTION = """\
import os
import sqlite3

from clandestino_interfaces import AbstractMigration


class Migration(AbstractMigration):
    infra = None

    async def up(self) -> None:
        connection = sqlite3.connect(os.environ.get("APP_DB") or "{db}")
        connection.execute("CREATE TABLE IF NOT EXISTS effects (tag TEXT)")
        connection.execute("INSERT INTO effects VALUES ('{tag}')")
        connection.commit()
        connection.close()

    async def down(self) -> None:
        connection = sqlite3.connect(os.environ.get("APP_DB") or "{db}")
        connection.execute("DELETE FROM effects WHERE tag = '{tag}'")
        connection.commit()
        connection.close()
"""


class SqliteTeam:
    """A team's project on SQLite, with its settings where `settings_in` says."""

    def __init__(self, base: Path, settings_in: str) -> None:
        self.base = base
        self.root = base / "repo" / "service" if settings_in != "environment" else base / "app"
        self.migrations = self.root / "migrations"
        self.migrations.mkdir(parents=True)
        self.db = base / "app.db"
        self.env = clean_environ()
        settings = {
            "CLANDESTINO_MIGRATION_REPO": "SQLITE",
            "CLANDESTINO_SQLITE_DB_PATH": str(self.db),
        }
        if settings_in == "environment":
            self.env.update(settings)
        elif settings_in == "parent .env":
            lines = [f"{name}={value}" for name, value in settings.items()]
            (base / "repo" / ".env").write_text("\n".join(lines) + "\n")
        elif settings_in == "settings.ini":
            lines = ["[settings]", *(f"{name}={value}" for name, value in settings.items())]
            (base / "repo" / "settings.ini").write_text("\n".join(lines) + "\n")

    def add(self, stem: str, source: str) -> str:
        (self.migrations / f"{stem}.py").write_text(source)
        return stem

    def run(self, cdt: Path | str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(cdt), *args], cwd=self.root, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def effects(self) -> list[str]:
        with sqlite3.connect(self.db) as connection:
            return [row[0] for row in connection.execute("SELECT tag FROM effects ORDER BY rowid")]

    def records(self) -> list[str]:
        with sqlite3.connect(self.db) as connection:
            rows = connection.execute("SELECT migration_name FROM clandestino ORDER BY id")
            return [row[0] for row in rows]


def _effect(tag: str, imports: str = "") -> str:
    return SQLITE_EFFECT.format(tag=repr(tag), imports=imports)


def _switch_and_check(
    team: SqliteTeam, applied: list[str], new: list[str], tags: list[str]
) -> None:
    """Our `cdt` after the original: nothing again, the new ones once, and the views agree."""
    migrated = team.run(CDT, "-m")
    assert migrated.returncode == 0, migrated.stderr
    lines = step_lines(migrated.stdout)
    assert [f"-> running {name} ⏭️" for name in applied] == lines[: len(applied)]
    assert [f"-> running {name} ✅" for name in new] == lines[len(applied) :]
    assert team.effects() == tags
    assert team.records() == applied + new
    check = team.run(CDT, "-lm", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    listing = team.run(CDT, "-lm")
    for name in applied + new:
        row = next(line for line in listing.stdout.splitlines() if line.startswith(name))
        assert "applied" in row, listing.stdout
    again = team.run(CDT, "-m")
    assert again.returncode == 0 and team.effects() == tags, again.stderr
    last = (applied + new)[-1]
    rolled = team.run(CDT, "-rm", "-y")
    assert rolled.returncode == 0, rolled.stderr
    assert f"-> rolling back {last} ✅" in step_lines(rolled.stdout)
    assert team.records() == (applied + new)[:-1]


@pytest.mark.parametrize(
    "settings_in",
    ["environment", "parent .env", "settings.ini"],
)
def test_a_sqlite_team_with_dashed_names_helpers_and_own_connections_switches(
    original_cdt: Path, tmp_path: Path, settings_in: str
) -> None:
    team = SqliteTeam(tmp_path, settings_in)
    (team.migrations / "helpers.py").write_text("PREFIX = 'h-'\n")
    applied = [
        team.add("migration_2024_01_01_00_00_01_add-users", _effect("users")),
        team.add(
            "migration_2024_01_01_00_00_02_use_helper",
            _effect("h-orders", "import helpers  # noqa: F401"),
        ),
        team.add(
            "migration_2024_01_01_00_00_03_own-connection",
            OWN_CONNECTION.format(db=team.db, tag="own"),
        ),
    ]
    by_original = team.run(original_cdt, "-m")
    assert by_original.returncode == 0, by_original.stdout + by_original.stderr
    assert team.records() == applied and team.effects() == ["users", "h-orders", "own"]
    new = [
        team.add("migration_2024_02_01_00_00_01_add-items", _effect("items")),
        team.add(
            "migration_2024_02_01_00_00_02_own-again",
            OWN_CONNECTION.format(db=team.db, tag="own2"),
        ),
    ]

    _switch_and_check(team, applied, new, ["users", "h-orders", "own", "items", "own2"])


def test_the_originals_records_written_by_migrate_database_in_an_app_are_adopted(
    original_cdt: Path, tmp_path: Path
) -> None:
    team = SqliteTeam(tmp_path, "environment")
    applied = [team.add("migration_2024_01_01_00_00_01_first", _effect("first"))]
    app = team.root / "app.py"
    app.write_text(
        "import asyncio\nfrom clandestino import migrate_database\n"
        "asyncio.run(migrate_database())\n"
    )
    python = original_cdt.with_name("python")
    by_original = team.run(python, str(app))
    assert by_original.returncode == 0, by_original.stderr
    assert team.records() == applied
    ours = subprocess.run(
        [sys.executable, str(app)], cwd=team.root, env=team.env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    new = [team.add("migration_2024_01_01_00_00_02_second", _effect("second"))]
    second = subprocess.run(
        [sys.executable, str(app)], cwd=team.root, env=team.env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert ours.returncode == 0 and second.returncode == 0, ours.stderr + second.stderr
    assert f"-> running {applied[0]} ⏭️" in ours.stdout
    assert f"-> running {new[0]} ✅" in step_lines(second.stdout)
    assert team.effects() == ["first", "second"]
    assert team.records() == applied + new


PSYCOPG_EFFECT = """\
import psycopg
from psycopg import sql
from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.get_cursor() as cursor:
            table = sql.Identifier("Effects")
            await cursor.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {{}} (tag text PRIMARY KEY, n serial)")
                .format(table)
            )
            await cursor.execute(sql.SQL("INSERT INTO {{}} (tag) VALUES (%s)").format(table),
                                 [{tag!r}])
            try:
                async with cursor.connection.transaction():
                    await cursor.execute('INSERT INTO "Effects" (tag) VALUES (%s)', [{tag!r}])
            except psycopg.errors.UniqueViolation:
                pass
            await cursor.execute('SELECT tag AS effect_tag FROM "Effects" LIMIT 1')
            assert [column.name for column in cursor.description] == ["effect_tag"]

    async def down(self) -> None:
        async with self.infra.get_cursor() as cursor:
            await cursor.execute('DELETE FROM "Effects" WHERE tag = %s', [{tag!r}])
"""


class PostgresTeam(SqliteTeam):
    """A team's project on PostgreSQL, its setting a libpq key=value string in the environment,
    its migrations written against psycopg's own API."""

    def __init__(self, base: Path, url: str) -> None:
        from urllib.parse import unquote, urlsplit

        from tests.harness import PostgresHarness

        self.harness = PostgresHarness(base / "backend", url)
        self.base = base
        self.root = base / "app"
        self.migrations = self.root / "migrations"
        self.migrations.mkdir(parents=True)
        parts = urlsplit(self.harness.url)
        query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        pairs = {
            "host": unquote(query.get("host", "")) or parts.hostname or "",
            "port": str(parts.port or query.get("port") or ""),
            "dbname": parts.path.lstrip("/"),
            "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
        }
        quoted = {
            key: "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            for key, value in pairs.items()
            if value
        }
        self.env = clean_environ()
        self.env.update(
            {
                "CLANDESTINO_MIGRATION_REPO": "POSTGRES",
                "CLANDESTINO_POSTGRES_CONNECTION_STRING": " ".join(
                    f"{k}={v}" for k, v in quoted.items()
                ),
            }
        )

    def effects(self) -> list[str]:
        return [str(row[0]) for row in self.harness.query('SELECT tag FROM "Effects" ORDER BY n')]

    def records(self) -> list[str]:
        return self.harness.records()


def test_a_postgres_team_with_psycopg_code_and_a_key_value_string_switches(
    original_cdt: Path, tmp_path: Path, postgres_url: str
) -> None:
    team = PostgresTeam(tmp_path, postgres_url)
    try:
        applied = [
            team.add("migration_2024_01_01_00_00_01_add-users", PSYCOPG_EFFECT.format(tag="users")),
            team.add("migration_2024_01_01_00_00_02_orders", PSYCOPG_EFFECT.format(tag="orders")),
        ]
        by_original = team.run(original_cdt, "-m")
        assert by_original.returncode == 0, by_original.stdout + by_original.stderr
        assert team.records() == applied and team.effects() == ["users", "orders"]
        new = [team.add("migration_2024_02_01_00_00_01_items", PSYCOPG_EFFECT.format(tag="items"))]
        setting = team.env["CLANDESTINO_POSTGRES_CONNECTION_STRING"]
        password = setting.partition("password=")[2].split(" ")[0].strip("'")

        _switch_and_check(team, applied, new, ["users", "orders", "items"])

        listing = team.run(CDT, "-lm")
        assert not password or password not in listing.stdout + listing.stderr
    finally:
        team.harness.cleanup()


MOTOR_EFFECT = """\
import time

from clandestino_interfaces import AbstractMigration
from clandestino_mongo.infra import MongoInfra


class Migration(AbstractMigration):
    infra = MongoInfra()

    async def up(self) -> None:
        async with self.infra.get_database() as db:
            await db.effects.insert_one({{"tag": {tag!r}, "at": time.time_ns()}})
            await db.effects.create_index("tag")
            found = await db.effects.find({{"tag": {tag!r}}}).to_list(None)
            assert len(found) == 1, found
            async for document in db.effects.find({{"tag": {tag!r}}}):
                assert document["tag"] == {tag!r}
            # Motor's aggregate() hands back its cursor at once, without an await.
            grouped = await db.effects.aggregate(
                [{{"$match": {{"tag": {tag!r}}}}},
                 {{"$group": {{"_id": "$tag", "n": {{"$sum": 1}}}}}}]
            ).to_list(None)
            assert grouped == [{{"_id": {tag!r}, "n": 1}}], grouped
            assert "effects" in await db.list_collection_names()

    async def down(self) -> None:
        async with self.infra.get_database() as db:
            await db.effects.delete_many({{"tag": {tag!r}}})
"""


class MongoTeam(SqliteTeam):
    """A team's project on MongoDB, its migrations written against Motor, as the original's
    `get_database()` handed out."""

    def __init__(self, base: Path, url: str) -> None:
        from tests.harness import MongoHarness

        self.harness = MongoHarness(base / "backend", url)
        self.base = base
        self.root = base / "app"
        self.migrations = self.root / "migrations"
        self.migrations.mkdir(parents=True)
        self.env = {**clean_environ(), **self.harness.env()}

    def effects(self) -> list[str]:
        return self.harness.effects()

    def records(self) -> list[str]:
        return self.harness.records()


def test_a_mongo_team_with_motor_code_switches(
    original_cdt: Path, tmp_path: Path, mongo_url: str
) -> None:
    team = MongoTeam(tmp_path, mongo_url)
    try:
        applied = [
            team.add("migration_2024_01_01_00_00_01_add-users", MOTOR_EFFECT.format(tag="users")),
            team.add("migration_2024_01_01_00_00_02_orders", MOTOR_EFFECT.format(tag="orders")),
        ]
        by_original = team.run(original_cdt, "-m")
        assert by_original.returncode == 0, by_original.stdout + by_original.stderr
        control = list(team.harness.database.clandestino.find({}, {"_id": 0}))
        assert control[0] == {"name": "clandestino init"}, control
        assert [sorted(document) for document in control[1:]] == [["created_at", "name"]] * 2
        assert team.records() == applied and team.effects() == ["users", "orders"]
        new = [team.add("migration_2024_02_01_00_00_01_items", MOTOR_EFFECT.format(tag="items"))]

        _switch_and_check(team, applied, new, ["users", "orders", "items"])
    finally:
        team.harness.cleanup()


ELASTICSEARCH_EFFECT = """\
import time

from clandestino_interfaces import AbstractMigration
from clandestino_elasticsearch.infra import ElasticsearchInfra

EFFECTS = {index!r}


class Migration(AbstractMigration):
    infra = ElasticsearchInfra()

    async def up(self) -> None:
        async with self.infra.get_client() as es:
            await es.index(index=EFFECTS, document={{"tag": {tag!r}, "at": time.time_ns()}})

    async def down(self) -> None:
        async with self.infra.get_client() as es:
            query = {{"term": {{"tag.keyword": {tag!r}}}}}
            found = await es.search(index=EFFECTS, query=query, size=100)
            for hit in found["hits"]["hits"]:
                await es.delete(index=EFFECTS, id=hit["_id"], refresh=True)
"""


class ElasticsearchTeam(SqliteTeam):
    """A team's project on Elasticsearch with the original's control index, `clandestino`."""

    def __init__(self, base: Path, url: str) -> None:
        from tests.harness import ElasticsearchHarness

        self.harness = ElasticsearchHarness(base / "backend", url)
        self.base = base
        self.root = base / "app"
        self.migrations = self.root / "migrations"
        self.migrations.mkdir(parents=True)
        self.harness.control = "clandestino"  # the original's, fixed
        env = self.harness.env()
        del env["CLANDESTINO_CONTROL_TABLE"]
        self.env = {**clean_environ(), **env}

    def effect(self, tag: str) -> str:
        return ELASTICSEARCH_EFFECT.format(index=self.harness.effects_index, tag=tag)

    def effects(self) -> list[str]:
        return self.harness.effects()

    def records(self) -> list[str]:
        return self.harness.records()


def test_an_elasticsearch_team_switches_within_a_second_of_the_originals_run(
    original_cdt: Path, tmp_path: Path, elasticsearch_url: str
) -> None:
    """The original indexes its records without a refresh: a run started right after it must
    still see them (it used to apply them again)."""
    team = ElasticsearchTeam(tmp_path, elasticsearch_url)
    for index in ("clandestino", "clandestino_lock"):
        if team.harness.client.indices.exists(index=index):
            team.harness.client.close()
            skip_outside_ci(f"the server already has an index {index!r}, which this test needs")
    try:
        applied = [team.add("migration_2024_01_01_00_00_01_add-users", team.effect("users"))]
        first = team.run(original_cdt, "-m")
        assert first.returncode == 0, first.stdout + first.stderr
        # No scheduled refresh, as on a busy cluster the moment the original ends: only a reader
        # that refreshes sees its next record. Without this, the original's process exit and our
        # start take about the node's one-second refresh interval, and a reader that does not
        # refresh would pass by luck.
        settings = {"index": {"refresh_interval": "-1"}}
        team.harness.client.indices.put_settings(index="clandestino", settings=settings)
        applied.append(team.add("migration_2024_01_01_00_00_02_orders", team.effect("orders")))
        by_original = team.run(original_cdt, "-m")
        original_done = time.monotonic()
        assert by_original.returncode == 0, by_original.stdout + by_original.stderr
        new = [team.add("migration_2024_02_01_00_00_01_items", team.effect("items"))]
        started_after = time.monotonic() - original_done
        migrated = team.run(CDT, "-m")

        assert started_after < 1.0, started_after
        assert migrated.returncode == 0, migrated.stderr
        lines = step_lines(migrated.stdout)
        assert lines == [f"-> running {name} ⏭️" for name in applied] + [
            f"-> running {new[0]} ✅"
        ], migrated.stdout
        init = team.harness.client.get(index="clandestino", id="init")["_source"]
        assert init == {"name": "clandestino init"}
        assert team.records() == applied + new
        assert team.effects() == ["users", "orders", "items"]
        check = team.run(CDT, "-lm", "--check")
        assert check.returncode == 0, check.stdout + check.stderr
        rolled = team.run(CDT, "-rm", "-y")
        assert rolled.returncode == 0, rolled.stderr
        assert f"-> rolling back {new[0]} ✅" in step_lines(rolled.stdout)
        assert team.records() == applied and team.effects() == ["users", "orders"]
    finally:
        team.harness.cleanup()
