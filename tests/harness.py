"""What the backend contract suite needs from each backend under test.

A harness gives the settings for a fresh, isolated database, writes migrations whose effect can be
counted in that database, and reads back the effects and the control records directly, without
going through Clandestino. Every backend adds one harness to BACKENDS and runs the same tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from tests.servers.proxy import Target

T = TypeVar("T")

__all__ = ["BACKENDS", "BackendHarness", "PostgresHarness", "SqliteHarness"]


@dataclass(frozen=True)
class EffectCode:
    """A backend's part of the effect migration: its import, infra and statements, each a line
    of Python inside `async with {opening}:`."""

    header: str
    infra: str
    opening: str
    write: list[str]
    read: str
    undo: list[str]


class BackendHarness(ABC):
    name: str
    # The session fixture that yields the server's URL, for backends that need a server.
    server_fixture: str | None = None
    # How many `cdt -m` processes the concurrency test starts at once.
    concurrent_deployers = 20
    # Stores without transactions leave a marker when a run dies in a step (and use a lease).
    leaves_markers = False
    # Backends where a step outside a transaction (`transactional = False`) leaves a marker.
    marks_untransacted_steps = False
    # Backends whose records a no-op `cdt -m` reads in one blocking call, with no event loop.
    reads_without_loop = False
    # Whether a failed step's rollback undoes all it did, so no clean-up down() is called.
    rollback_undoes_failed_steps = False
    # Stores with a lock of their own; those without print that deployers need another one.
    locks = True

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        self.workdir = workdir
        self.server_url = server_url
        workdir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Settings that point `cdt` at this harness's database."""

    @abstractmethod
    def effect_code(self, tag: str) -> EffectCode:
        """How this backend's migrations write, read and remove the effect `tag`."""

    def effect_migration(
        self,
        tag: str,
        *,
        fail: bool = False,
        sleep: float = 0.0,
        down_marker: Path | None = None,
        query_after: bool = False,
        wait_for: Path | None = None,
        down_wait_for: Path | None = None,
        down_log: Path | None = None,
        down_sleep: float = 0.0,
        transactional: bool = True,
    ) -> str:
        """Source of a migration whose up() adds `tag` to the effects and whose down() removes it.

        fail: up() raises after adding the effect; sleep: the first time up() runs, it touches
        started_marker(tag) after adding the effect, then waits;
        down_marker: down() writes this file first, to prove it ran;
        query_after: up() ends with a read of the effects, a round trip to the database after
        the sleep (so a connection lost meanwhile is met inside up()).
        wait_for: up() first touches `<wait_for>.reached`, then waits until `wait_for` exists
        (a barrier the test opens), before it writes anything.
        down_wait_for: the same barrier, at the start of down().
        down_log: down() appends a line `tag` to this file before it removes the effect, so a
        test can count how many times it ran.
        down_sleep: the first time down() runs, it touches started_marker(f"{tag}.down") after
        removing the effect, then waits.
        transactional: False declares `transactional = False` (run outside the step's
        transaction, with an in-progress marker, where the backend has both).
        """
        code = self.effect_code(tag)
        started = str(self.started_marker(tag))
        barrier = str(wait_for) if wait_for else ""
        up = [
            f"if {barrier!r}:",
            f"    Path({barrier + '.reached'!r}).touch()",
            f"    while not Path({barrier!r}).exists():",
            "        await asyncio.sleep(0.02)",
            *code.write,
            f"started = Path({started!r})",
            f"if {sleep!r} and not started.exists():",
            "    started.touch()",
            f"    await asyncio.sleep({sleep!r})",
            f"if {query_after!r}:",
            f"    {code.read}",
            f"if {fail!r}:",
            f'    raise RuntimeError("boom in {tag}")',
        ]
        marker = f"Path({str(down_marker)!r}).write_text('down called')" if down_marker else "pass"
        down_barrier = str(down_wait_for) if down_wait_for else ""
        logged = str(down_log) if down_log else ""
        down_started = str(self.started_marker(f"{tag}.down"))
        before_undo = [
            f"if {down_barrier!r}:",
            f"    Path({down_barrier + '.reached'!r}).touch()",
            f"    while not Path({down_barrier!r}).exists():",
            "        await asyncio.sleep(0.02)",
            f"if {logged!r}:",
            f"    with open({logged!r}, 'a') as log:",
            f"        log.write({tag + chr(10)!r})",
        ]
        after_undo = [
            f"down_started = Path({down_started!r})",
            f"if {down_sleep!r} and not down_started.exists():",
            "    down_started.touch()",
            f"    await asyncio.sleep({down_sleep!r})",
        ]
        return "\n".join(
            [
                "import asyncio",
                "import time",
                "from pathlib import Path",
                "",
                "from clandestino_interfaces import AbstractMigration",
                code.header,
                "",
                "",
                "class Migration(AbstractMigration):",
                f"    infra = {code.infra}",
                f"    transactional = {transactional!r}",
                "",
                "    async def up(self) -> None:",
                f"        async with {code.opening}:",
                *(f"            {line}" for line in up),
                "",
                "    async def down(self) -> None:",
                f"        {marker}",
                *(f"        {line}" for line in before_undo),
                f"        async with {code.opening}:",
                *(f"            {line}" for line in code.undo),
                *(f"        {line}" for line in after_undo),
                "",
            ]
        )

    def started_marker(self, tag: str) -> Path:
        """The file a sleeping migration touches once its effect is written, before it sleeps."""
        return self.workdir / f"{tag}.started"

    @abstractmethod
    def effects(self) -> list[str]:
        """Every tag present in the database, duplicates included."""

    @abstractmethod
    def remove_effects(self, tag: str) -> None:
        """Delete the effects of `tag`, as a user repairing by hand would."""

    @abstractmethod
    def records(self) -> list[str]:
        """The migration names in the control records, in the order they were written."""

    @abstractmethod
    def control_exists(self) -> bool:
        """Whether the control table / collection / index exists at all."""

    @abstractmethod
    def write_original_control(self, names: list[str]) -> None:
        """Create the control records exactly as the original tool would have, for `names`."""

    def server_address(self) -> Target | None:
        """Where the server listens: (host, port), or a unix socket's path; None without one."""
        return None

    def env_via(self, host: str, port: int) -> dict[str, str]:
        """Settings like env(), but reaching the server at host:port (a proxy in front of it)."""
        raise NotImplementedError(f"{self.name} has no server to reach")

    def cleanup(self) -> None:
        return None


def _with_address(url: str, host: str, port: int, *, drop: set[str], add: dict[str, str]) -> str:
    """`url` with its host and port replaced, query parameters in `drop` removed, `add` added."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if "@" in parts.netloc else f"{host}:{port}"
    query = [(key, value) for key, value in parse_qsl(parts.query) if key not in drop]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode([*query, *add.items()])))


def _tcp_address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or default_port


class SqliteHarness(BackendHarness):
    reads_without_loop = True
    name = "sqlite"
    concurrent_deployers = 10

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        super().__init__(workdir)
        self.path = workdir / "control.db"

    def env(self) -> dict[str, str]:
        return {"CLANDESTINO_SQLITE_DB_PATH": str(self.path)}

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="from clandestino_sqlite.infra import SQLiteInfra",
            infra="SQLiteInfra()",
            opening="self.infra.get_cursor() as cursor",
            write=[
                'cursor.execute("CREATE TABLE IF NOT EXISTS effects (tag TEXT)")',
                f'cursor.execute("INSERT INTO effects (tag) VALUES (?)", [{tag!r}])',
            ],
            read='cursor.execute("SELECT count(*) FROM effects").fetchone()',
            undo=[f'cursor.execute("DELETE FROM effects WHERE tag = ?", [{tag!r}])'],
        )

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(self.path)
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            connection.close()

    def effects(self) -> list[str]:
        return [str(row[0]) for row in self._query("SELECT tag FROM effects ORDER BY rowid")]

    def remove_effects(self, tag: str) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.execute("DELETE FROM effects WHERE tag = ?", [tag])

    def records(self) -> list[str]:
        rows = self._query("SELECT migration_name FROM clandestino ORDER BY id")
        return [str(row[0]) for row in rows]

    def control_exists(self) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'clandestino'"))

    def write_original_control(self, names: list[str]) -> None:
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute(
                """
                CREATE TABLE IF NOT EXISTS clandestino (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    migration_name TEXT UNIQUE NOT NULL,
                    created_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                )
                """
            )
            connection.executemany(
                "INSERT INTO clandestino (migration_name) VALUES (?)", [[n] for n in names]
            )
        connection.close()


class PostgresHarness(BackendHarness):
    """A fresh database on the session's PostgreSQL server for each test."""

    name = "postgres"
    server_fixture = "postgres_url"
    reads_without_loop = False
    rollback_undoes_failed_steps = True
    marks_untransacted_steps = True

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        super().__init__(workdir, server_url)
        assert server_url is not None
        self.database = f"clandestino_test_{uuid.uuid4().hex[:12]}"
        _pg(server_url, lambda c: c.execute(f'CREATE DATABASE "{self.database}"'))
        self.url = _with_database(server_url, self.database)

    def env(self) -> dict[str, str]:
        return {
            "CLANDESTINO_MIGRATION_REPO": "POSTGRES",
            "CLANDESTINO_POSTGRES_CONNECTION_STRING": self.url,
        }

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="from clandestino_postgres.infra import PostgresInfra",
            infra="PostgresInfra()",
            opening="self.infra.connection() as conn",
            write=[
                'await conn.execute("CREATE TABLE IF NOT EXISTS effects (tag text)")',
                f'await conn.execute("INSERT INTO effects (tag) VALUES ($1)", {tag!r})',
            ],
            read='await conn.fetchval("SELECT count(*) FROM effects")',
            undo=[f'await conn.execute("DELETE FROM effects WHERE tag = $1", {tag!r})'],
        )

    def server_address(self) -> Target:
        """The server's TCP address, or its unix socket (the embedded server's `?host=/dir`)."""
        parts = urlsplit(self.url)
        query = parse_qs(parts.query)
        port = parts.port or int(query.get("port", ["5432"])[0])
        socket_dir = query.get("host", [""])[0]
        if not parts.hostname and socket_dir.startswith("/"):
            return f"{socket_dir}/.s.PGSQL.{port}"
        return parts.hostname or "localhost", port

    def env_via(self, host: str, port: int) -> dict[str, str]:
        url = _with_address(self.url, host, port, drop={"host", "port"}, add={})
        return {**self.env(), "CLANDESTINO_POSTGRES_CONNECTION_STRING": url}

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        """Rows of `sql` in this test's database; none when the table does not exist."""

        async def run(connection: Any) -> list[tuple[object, ...]]:
            import asyncpg

            try:
                return [tuple(row) for row in await connection.fetch(sql, *args)]
            except asyncpg.UndefinedTableError:
                return []

        return _pg(self.url, run)

    def effects(self) -> list[str]:
        return [str(row[0]) for row in self.query("SELECT tag FROM effects ORDER BY ctid")]

    def remove_effects(self, tag: str) -> None:
        self.query("DELETE FROM effects WHERE tag = $1", tag)

    def records(self) -> list[str]:
        rows = self.query("SELECT migration_name FROM clandestino ORDER BY id")
        return [str(row[0]) for row in rows]

    def control_exists(self) -> bool:
        return self.query("SELECT to_regclass('clandestino')")[0][0] is not None

    def write_original_control(self, names: list[str]) -> None:
        async def run(connection: Any) -> None:
            await connection.execute(
                """
                CREATE TABLE clandestino(
                    id serial PRIMARY KEY,
                    migration_name VARCHAR ( 255 ) UNIQUE NOT NULL,
                    created_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                );
                """
            )
            await connection.executemany(
                "INSERT INTO clandestino(migration_name) VALUES ($1)", [(n,) for n in names]
            )

        _pg(self.url, run)

    def cleanup(self) -> None:
        assert self.server_url is not None
        _pg(
            self.server_url,
            lambda c: c.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'),
        )


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _pg(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` on a fresh asyncpg connection to `url`, from synchronous test code."""

    async def run() -> T:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(run())


BACKENDS: list[type[BackendHarness]] = [SqliteHarness, PostgresHarness]


class _SearchHarness(BackendHarness):
    """Indices of their own (a fresh control index name) on the session's search-engine node;
    the two engines' clients differ only in how a document and a query are handed over."""

    server_fixture: str
    leaves_markers = True
    # The connection setting of the engine's backend.
    setting: str
    repository: str

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        super().__init__(workdir, server_url)
        assert server_url is not None
        self.control = f"t_{uuid.uuid4().hex[:12]}"
        self.effects_index = f"{self.control}_effects"
        self.client: Any = self._client(server_url)

    def _client(self, server_url: str) -> Any:
        raise NotImplementedError

    def _index(self, index: str, id: str, document: dict[str, Any]) -> None:
        raise NotImplementedError

    def _search(self, index: str, **query: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        assert self.server_url is not None
        return {
            "CLANDESTINO_MIGRATION_REPO": self.repository,
            self.setting: self.server_url,
            "CLANDESTINO_CONTROL_TABLE": self.control,
        }

    def server_address(self) -> Target:
        assert self.server_url is not None
        return _tcp_address(self.server_url, 9200)

    def env_via(self, host: str, port: int) -> dict[str, str]:
        assert self.server_url is not None
        url = _with_address(self.server_url, host, port, drop=set(), add={})
        return {**self.env(), self.setting: url}

    def effects(self) -> list[str]:
        hits = self._search(self.effects_index, sort=[{"at": "asc"}])
        return [str(hit["tag"]) for hit in hits]

    def remove_effects(self, tag: str) -> None:
        for hit in self._search(self.effects_index):
            if hit["tag"] == tag:
                self.client.delete(index=self.effects_index, id=hit["_id"], refresh=True)

    def records(self) -> list[str]:
        hits = [
            hit
            for hit in self._search(self.control)
            if hit["_id"] != "init" and "created_at" in hit
        ]
        return [str(hit["name"]) for hit in sorted(hits, key=lambda h: str(h["created_at"]))]

    def control_exists(self) -> bool:
        return bool(self.client.indices.exists(index=self.control))

    def write_original_control(self, names: list[str]) -> None:
        import datetime

        self._index(self.control, "init", {"name": "clandestino init"})
        for name in names:
            created = str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
            self._index(self.control, name, {"name": name, "created_at": created})
        self.client.indices.refresh(index=self.control)

    def cleanup(self) -> None:
        for index in (self.control, f"{self.control}_lock", self.effects_index):
            self.client.indices.delete(index=index, ignore_unavailable=True)
        self.client.close()


class ElasticsearchHarness(_SearchHarness):
    name = "elasticsearch"
    server_fixture = "elasticsearch_url"
    marks_untransacted_steps = True
    setting = "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING"
    repository = "ELASTICSEARCH"

    def _client(self, server_url: str) -> Any:
        from elasticsearch import Elasticsearch

        return Elasticsearch(server_url, request_timeout=60)

    def _index(self, index: str, id: str, document: dict[str, Any]) -> None:
        self.client.index(index=index, id=id, document=document)

    def _search(self, index: str, **query: Any) -> list[dict[str, Any]]:
        from elasticsearch import NotFoundError

        try:
            self.client.indices.refresh(index=index)
            found = self.client.search(index=index, size=10_000, **query)
        except NotFoundError:
            return []
        return [hit["_source"] | {"_id": hit["_id"]} for hit in found["hits"]["hits"]]

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="from clandestino_elasticsearch.infra import ElasticsearchInfra\n\n"
            f"EFFECTS = {self.effects_index!r}",
            infra="ElasticsearchInfra()",
            opening="self.infra.get_client() as es",
            write=[
                f'document = {{"tag": {tag!r}, "at": time.time_ns()}}',
                "await es.index(index=EFFECTS, document=document, refresh=True)",
            ],
            read="await es.count(index=EFFECTS)",
            undo=[
                f'query = {{"term": {{"tag.keyword": {tag!r}}}}}',
                "found = await es.search(index=EFFECTS, query=query, size=100)",
                'for hit in found["hits"]["hits"]:',
                '    await es.delete(index=EFFECTS, id=hit["_id"], refresh=True)',
            ],
        )


BACKENDS.append(ElasticsearchHarness)


class OpenSearchHarness(_SearchHarness):
    name = "opensearch"
    server_fixture = "opensearch_url"
    setting = "CLANDESTINO_OPENSEARCH_CONNECTION_STRING"
    repository = "OPENSEARCH"

    def _client(self, server_url: str) -> Any:
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[server_url], timeout=60)

    def _index(self, index: str, id: str, document: dict[str, Any]) -> None:
        self.client.index(index=index, id=id, body=document)

    def _search(self, index: str, **body: Any) -> list[dict[str, Any]]:
        from opensearchpy import NotFoundError

        try:
            self.client.indices.refresh(index=index)
            found = self.client.search(index=index, body={"size": 10_000, **body})
        except NotFoundError:
            return []
        return [hit["_source"] | {"_id": hit["_id"]} for hit in found["hits"]["hits"]]

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="from clandestino_opensearch.infra import OpenSearchInfra\n\n"
            f"EFFECTS = {self.effects_index!r}",
            infra="OpenSearchInfra()",
            opening="self.infra.get_client() as client",
            write=[
                f'document = {{"tag": {tag!r}, "at": time.time_ns()}}',
                "await client.index(index=EFFECTS, body=document, refresh=True)",
            ],
            read="await client.count(index=EFFECTS)",
            undo=[
                f'query = {{"query": {{"term": {{"tag.keyword": {tag!r}}}}}, "size": 100}}',
                "found = await client.search(index=EFFECTS, body=query)",
                'for hit in found["hits"]["hits"]:',
                '    await client.delete(index=EFFECTS, id=hit["_id"], refresh=True)',
            ],
        )


BACKENDS.append(OpenSearchHarness)


class MongoHarness(BackendHarness):
    """A fresh database for each test on the session's MongoDB-protocol server."""

    name = "mongo"
    server_fixture = "mongo_url"
    leaves_markers = True
    marks_untransacted_steps = True

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        super().__init__(workdir, server_url)
        from pymongo import MongoClient

        assert server_url is not None
        self.database_name = f"t_{uuid.uuid4().hex[:12]}"
        self.url = f"{server_url}/{self.database_name}"
        self.client: Any = MongoClient(self.url, serverSelectionTimeoutMS=20_000)
        self.database = self.client[self.database_name]

    def env(self) -> dict[str, str]:
        return {
            "CLANDESTINO_MIGRATION_REPO": "MONGO",
            "CLANDESTINO_MONGO_CONNECTION_STRING": self.url,
        }

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="from clandestino_mongo.infra import MongoInfra",
            infra="MongoInfra()",
            opening="self.infra.get_database() as db",
            write=[
                f'document = {{"tag": {tag!r}, "at": time.time_ns()}}',
                "await db.effects.insert_one(document, session=self.infra.session)",
            ],
            read="await db.effects.count_documents({}, session=self.infra.session)",
            undo=[f'await db.effects.delete_many({{"tag": {tag!r}}}, session=self.infra.session)'],
        )

    def server_address(self) -> Target:
        """The (single) server's address; a URL naming several hosts is not supported here."""
        return _tcp_address(self.url, 27017)

    def env_via(self, host: str, port: int) -> dict[str, str]:
        # Without directConnection the driver learns the server's own address from `hello`
        # and goes there, around the proxy.
        url = _with_address(
            self.url, host, port, drop={"replicaSet"}, add={"directConnection": "true"}
        )
        return {**self.env(), "CLANDESTINO_MONGO_CONNECTION_STRING": url}

    def effects(self) -> list[str]:
        return [str(d["tag"]) for d in self.database.effects.find({}, sort=[("at", 1)])]

    def remove_effects(self, tag: str) -> None:
        self.database.effects.delete_many({"tag": tag})

    def records(self) -> list[str]:
        documents = self.database.clandestino.find(
            {"name": {"$ne": "clandestino init"}, "created_at": {"$exists": True}},
            sort=[("created_at", 1), ("_id", 1)],
        )
        return [str(d["name"]) for d in documents]

    def control_exists(self) -> bool:
        return "clandestino" in self.database.list_collection_names()

    def write_original_control(self, names: list[str]) -> None:
        import datetime

        self.database.clandestino.insert_one({"name": "clandestino init"})
        for name in names:
            created = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            self.database.clandestino.insert_one({"name": name, "created_at": created})

    def cleanup(self) -> None:
        self.client.drop_database(self.database_name)
        self.client.close()


BACKENDS.append(MongoHarness)


class MinioHarness(BackendHarness):
    """The session's MinIO server; the `clandestino` bucket is fixed, so each test empties it.

    server_url carries the keys as user-info (http://key:secret@host:port); the store ignores
    user-info, as the original did, and reads the keys from their own settings."""

    name = "minio"
    server_fixture = "minio_url"
    leaves_markers = True
    concurrent_deployers = 10

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        super().__init__(workdir, server_url)
        assert server_url is not None
        parts = urlsplit(server_url)
        self.access_key, self.secret_key = parts.username or "", parts.password or ""
        self.url = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        self._wipe()
        self._run(lambda client: client.make_bucket("effects"))

    def env(self) -> dict[str, str]:
        return {
            "CLANDESTINO_MIGRATION_REPO": "MINIO",
            "CLANDESTINO_BUCKET_CONNECTION_STRING": self.url,
            "CLANDESTINO_BUCKET_ACCESS_KEY": self.access_key,
            "CLANDESTINO_BUCKET_SECRET_KEY": self.secret_key,
        }

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="import io\nfrom clandestino_minio.infra import MinioInfra",
            infra="MinioInfra()",
            opening="self.infra.get_client() as client",
            write=[
                f'key = f"{{time.time_ns():020d}}-{tag}"',
                'await client.put_object("effects", key, io.BytesIO(b"1"), 1)',
            ],
            read='[item async for item in client.list_objects("effects")]',
            undo=[
                'async for item in client.list_objects("effects"):',
                f'    if item.object_name.endswith("-{tag}"):',
                '        await client.remove_object("effects", item.object_name)',
            ],
        )

    def server_address(self) -> Target:
        return _tcp_address(self.url, 9000)

    def env_via(self, host: str, port: int) -> dict[str, str]:
        return {**self.env(), "CLANDESTINO_BUCKET_CONNECTION_STRING": f"http://{host}:{port}"}

    def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async def run() -> T:
            from miniopy_async import Minio

            client = Minio(
                urlsplit(self.url).netloc, self.access_key, self.secret_key, secure=False
            )
            try:
                return await work(client)
            finally:
                await client.close_session()

        return asyncio.run(run())

    def _names(self, bucket: str) -> list[tuple[str, Any]]:
        async def names(client: Any) -> list[tuple[str, Any]]:
            if not await client.bucket_exists(bucket):
                return []
            items = client.list_objects(bucket, recursive=True)
            return [(item.object_name, item.last_modified) async for item in items]

        return self._run(names)

    def effects(self) -> list[str]:
        return [name.partition("-")[2] for name, _ in sorted(self._names("effects"))]

    def remove_effects(self, tag: str) -> None:
        for name, _ in self._names("effects"):
            if name.endswith(f"-{tag}"):
                self._run(lambda client, name=name: client.remove_object("effects", name))

    def records(self) -> list[str]:
        """Applied records: the index's (with a time) and the original's objects it has not
        taken over, in the order written."""
        import json
        from datetime import datetime

        async def index(client: Any) -> Any:
            try:
                response = await client.get_object("clandestino", ".clandestino/records.json")
            except Exception:
                return {"records": {}, "taken": []}
            try:
                return json.loads(await response.read())
            finally:
                response.release()

        data = self._run(index)
        found = [
            (datetime.fromisoformat(entry["applied_at"]), name)
            for name, entry in data["records"].items()
            if entry.get("applied_at")
        ]
        found += [
            (modified, name)
            for name, modified in self._names("clandestino")
            if not name.startswith(".clandestino/")
            and name not in data["records"]
            and name not in data["taken"]
        ]
        return [name for _, name in sorted(found)]

    def control_exists(self) -> bool:
        return bool(self._run(lambda client: client.bucket_exists("clandestino")))

    def get_json(self, key: str) -> Any:
        """An object of the control bucket, parsed; None if it is not there."""
        import json

        async def get(client: Any) -> Any:
            try:
                response = await client.get_object("clandestino", key)
            except Exception:
                return None
            try:
                return json.loads(await response.read())
            finally:
                response.release()

        return self._run(get)

    def put_json(self, key: str, document: Any) -> None:
        """Write an object of the control bucket unconditionally, as an intruder would."""
        import io
        import json

        body = json.dumps(document).encode()

        async def put(client: Any) -> None:
            if not await client.bucket_exists("clandestino"):
                await client.make_bucket("clandestino")
            await client.put_object("clandestino", key, io.BytesIO(body), len(body))

        self._run(put)

    def write_original_control(self, names: list[str]) -> None:
        async def write(client: Any) -> None:
            import io

            if not await client.bucket_exists("clandestino"):
                await client.make_bucket("clandestino")
            for name in names:
                await client.put_object("clandestino", name, io.BytesIO(b"1"), 1)

        self._run(write)

    def _wipe(self) -> None:
        async def wipe(client: Any) -> None:
            for bucket in ("clandestino", "effects"):
                if not await client.bucket_exists(bucket):
                    continue
                async for item in client.list_objects(bucket, recursive=True):
                    await client.remove_object(bucket, item.object_name)
                await client.remove_bucket(bucket)

        self._run(wipe)

    def cleanup(self) -> None:
        self._wipe()


BACKENDS.append(MinioHarness)


class QdrantHarness(BackendHarness):
    """qdrant-client's local mode in a folder of the test's own (CLANDESTINO_TEST_QDRANT_URL for a
    real server, whose `clandestino` collection each test drops).

    Local mode is qdrant-client's in-process implementation of Qdrant's API, not a server: no
    Qdrant server can be had on this machine. `path=` keeps it in files, so that `cdt`
    subprocesses and this harness see the same records (one process at a time)."""

    name = "qdrant"
    leaves_markers = True
    locks = False

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        import os

        super().__init__(workdir, server_url)
        self.url = os.environ.get("CLANDESTINO_TEST_QDRANT_URL") or f"file://{workdir / 'qdrant'}"
        self._run(self._drop)

    def env(self) -> dict[str, str]:
        return {
            "CLANDESTINO_MIGRATION_REPO": "QDRANT",
            "CLANDESTINO_QDRANT_CONNECTION_STRING": self.url,
        }

    def effect_code(self, tag: str) -> EffectCode:
        return EffectCode(
            header="import uuid\nfrom qdrant_client import models\n"
            "from clandestino_qdrant.infra import QdrantInfra",
            infra="QdrantInfra()",
            opening="self.infra.get_client() as client",
            write=[
                'if not await client.collection_exists("effects"):',
                "    vectors = models.VectorParams(size=1, distance=models.Distance.COSINE)",
                '    await client.create_collection("effects", vectors_config=vectors)',
                f'payload = {{"tag": {tag!r}, "at": time.time_ns()}}',
                "point = models.PointStruct(id=str(uuid.uuid4()), vector=[1.0], payload=payload)",
                'await client.upsert("effects", points=[point])',
            ],
            read='await client.count("effects")',
            undo=[
                f"match = models.MatchValue(value={tag!r})",
                'condition = models.FieldCondition(key="tag", match=match)',
                "selector = models.FilterSelector(filter=models.Filter(must=[condition]))",
                'await client.delete("effects", points_selector=selector)',
            ],
        )

    def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async def run() -> T:
            from qdrant_client import AsyncQdrantClient

            if self.url.startswith("file://"):
                client = AsyncQdrantClient(path=self.url.removeprefix("file://"))
            else:
                client = AsyncQdrantClient(url=self.url, check_compatibility=False)
            try:
                return await work(client)
            finally:
                await client.close()

        return asyncio.run(run())

    @staticmethod
    async def _drop(client: Any) -> None:
        for collection in ("clandestino", "effects"):
            if await client.collection_exists(collection):
                await client.delete_collection(collection)

    def _payloads(self, collection: str) -> list[dict[str, Any]]:
        async def read(client: Any) -> list[dict[str, Any]]:
            if not await client.collection_exists(collection):
                return []
            points, _ = await client.scroll(collection, limit=100_000, with_payload=True)
            return [point.payload for point in points]

        return self._run(read)

    def effects(self) -> list[str]:
        return [str(p["tag"]) for p in sorted(self._payloads("effects"), key=lambda p: p["at"])]

    def remove_effects(self, tag: str) -> None:
        async def remove(client: Any) -> None:
            from qdrant_client import models

            condition = models.FieldCondition(key="tag", match=models.MatchValue(value=tag))
            selector = models.FilterSelector(filter=models.Filter(must=[condition]))
            await client.delete("effects", points_selector=selector)

        self._run(remove)

    def records(self) -> list[str]:
        from datetime import UTC, datetime

        def at(payload: dict[str, Any]) -> datetime:
            parsed = datetime.fromisoformat(str(payload["created_at"]))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        applied = [p for p in self._payloads("clandestino") if p.get("created_at")]
        return [str(p["name"]) for p in sorted(applied, key=at)]

    def control_exists(self) -> bool:
        return bool(self._run(lambda client: client.collection_exists("clandestino")))

    def write_original_control(self, names: list[str]) -> None:
        """The original's points exactly: id from the name's SHA-256, vector [1], payload name
        and str(utcnow()). (The original's own code cannot write to local mode.)"""
        import datetime
        import hashlib

        async def write(client: Any) -> None:
            from qdrant_client import models

            if not await client.collection_exists("clandestino"):
                vectors = models.VectorParams(size=1, distance=models.Distance.COSINE)
                await client.create_collection("clandestino", vectors_config=vectors)
            for name in names:
                point_id = str(uuid.UUID(hex=hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]))
                created = str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
                payload = {"name": name, "created_at": created}
                point = models.PointStruct(id=point_id, vector=[1], payload=payload)
                await client.upsert("clandestino", points=[point])

        self._run(write)

    def cleanup(self) -> None:
        self._run(self._drop)


BACKENDS.append(QdrantHarness)
