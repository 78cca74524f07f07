"""The fleet section: `python -m bench.fleet` migrates 1, 10, 100 and 1,000 PostgreSQL schemas
(three migrations each) at concurrency 1, 4 and 16, and 100 schemas with 3 runners at once,
each timed as a real `cdt -m --fleet` process, with its peak memory (ru_maxrss of the child).
FLEET_BACKENDS=postgres,mongo,elasticsearch also measures MongoDB databases (on the tests'
SecantusDB server) and Elasticsearch index prefixes (on the tests' node), at FLEET_STORE_SIZES
(default 100) targets; the servers are started as the tests start theirs (tests/servers/).

Numbers depend on the machine's load; the report says so. FLEET_SLEEP_MS makes each migration
also sleep that long, so that the runners' work is dominated by waits, as a real fleet's is on
the database (the 3-runner goal is measured so: on 2 cores, CPU-bound runners cannot scale).
Peak memory is each run's own largest process (wait4's ru_maxrss), not the largest so far.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from bench.server import postgres_server

CDT = str(Path(sys.executable).with_name("cdt"))
MIGRATION = """
import asyncio

from clandestino_interfaces import AbstractMigration
{infra_import}


class Migration(AbstractMigration):
    infra = {infra}

    async def up(self) -> None:
        async with {opening}:
            await {up}
            if {sleep}:
                await asyncio.sleep({sleep})

    async def down(self) -> None:
        async with {opening}:
            await {down}
"""
# Each store's migration n: its infra, and a statement that makes (or undoes) table t<n>.
STEPS = {
    "postgres": {
        "infra_import": "from clandestino_postgres.infra import PostgresInfra",
        "infra": "PostgresInfra()",
        "opening": "self.infra.connection() as conn",
        "up": 'conn.execute("CREATE TABLE IF NOT EXISTS t{n} (id int)")',
        "down": 'conn.execute("DROP TABLE t{n}")',
    },
    "mongo": {
        "infra_import": "from clandestino_mongo.infra import MongoInfra",
        "infra": "MongoInfra()",
        "opening": "self.infra.get_database() as db",
        "up": "db.t{n}.insert_one({{'n': {n}}}, session=self.infra.session)",
        "down": "db.t{n}.drop()",
    },
    "elasticsearch": {
        "infra_import": "from clandestino_elasticsearch.infra import ElasticsearchInfra",
        "infra": "ElasticsearchInfra()",
        "opening": "self.infra.get_client() as es",
        "up": "es.index(index=f'{{self.target.name}}_t{n}', document={{'n': {n}}})",
        "down": "es.indices.delete(index=f'{{self.target.name}}_t{n}')",
    },
}
# A fleet run's settings for `cdt`, given the run's name; the targets are named `<run>_<i>`.
RunEnv = Callable[[str], AbstractContextManager[dict[str, str]]]


def _project(root: Path, store: str, run: str, targets: int) -> None:
    (root / "migrations").mkdir(parents=True)
    sleep = int(os.environ.get("FLEET_SLEEP_MS", "0")) / 1000
    for n in range(3):
        steps = {key: text.format(n=n) for key, text in STEPS[store].items()}
        path = root / "migrations" / f"migration_2024_01_01_00_00_0{n}_m{n}.py"
        path.write_text(MIGRATION.format(sleep=sleep, **steps))
    (root / "targets.txt").write_text("".join(f"{run}_{i:04d}\n" for i in range(targets)))


def _run(
    root: Path, env: dict[str, str], concurrency: int, runners: int = 1
) -> tuple[float, float]:
    args = [CDT, "-m", "--fleet", "--targets", "targets.txt", "--concurrency", str(concurrency)]
    began = time.perf_counter()
    started = [
        subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.DEVNULL) for _ in range(runners)
    ]
    waited = [os.wait4(p.pid, 0) for p in started]
    seconds = time.perf_counter() - began
    codes = [os.waitstatus_to_exitcode(status) for _, status, _ in waited]
    assert codes == [0] * runners, codes
    peak_mib = max(usage.ru_maxrss for _, _, usage in waited) / 1024
    return seconds, peak_mib


@contextmanager
def _postgres(folder: Path) -> Iterator[RunEnv]:
    """Each run in a database of its own; its targets are schemas."""
    with postgres_server() as server:
        print(f"PostgreSQL {server.version()} (embedded), schemas")

        @contextmanager
        def run(name: str) -> Iterator[dict[str, str]]:
            server.fresh_database(name)
            yield {
                "CLANDESTINO_MIGRATION_REPO": "postgres",
                "CLANDESTINO_POSTGRES_CONNECTION_STRING": server.url(name),
            }
            server.drop_database(name)

        yield run


@contextmanager
def _mongo(folder: Path) -> Iterator[RunEnv]:
    """Targets are databases of one server; the fleet's outcomes go to `<run>_control`."""
    import pymongo

    from tests.servers.mongo import mongo_server

    with mongo_server(folder) as url:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
        with client:
            print(f"MongoDB protocol {client.server_info()['version']} (SecantusDB), databases")

            @contextmanager
            def run(name: str) -> Iterator[dict[str, str]]:
                yield {
                    "CLANDESTINO_MIGRATION_REPO": "mongo",
                    "CLANDESTINO_MONGO_CONNECTION_STRING": f"{url}/{name}_control",
                }
                for database in client.list_database_names():
                    if database.startswith(f"{name}_"):
                        client.drop_database(database)

            yield run


@contextmanager
def _elasticsearch(folder: Path) -> Iterator[RunEnv]:
    """Targets are index prefixes of one node."""
    from elasticsearch import Elasticsearch

    from tests.servers.elasticsearch import elasticsearch_server

    with elasticsearch_server(folder) as url, Elasticsearch(url) as client:
        print(f"Elasticsearch {client.info()['version']['number']}, index prefixes")

        @contextmanager
        def run(name: str) -> Iterator[dict[str, str]]:
            yield {
                "CLANDESTINO_MIGRATION_REPO": "elasticsearch",
                "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url,
                "CLANDESTINO_CONTROL_TABLE": "ctl",
            }
            # By name: a wildcard delete is refused by default (action.destructive_requires_name).
            indices = list(client.indices.get(index=f"{name}_*", expand_wildcards="all"))
            for start in range(0, len(indices), 100):
                client.indices.delete(index=",".join(indices[start : start + 100]))

        yield run


STORES: dict[str, Callable[[Path], AbstractContextManager[RunEnv]]] = {
    "postgres": _postgres,
    "mongo": _mongo,
    "elasticsearch": _elasticsearch,
}


def _measure(store: str, runs_of: RunEnv, sizes: list[int]) -> None:
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("targets  concurrency  runners  seconds  peak MiB (this run's largest process)")
    for targets in sizes:
        runs = os.environ.get("FLEET_RUNS", "1x1,4x1,16x1,4x3").split(",")
        for concurrency, runners in [tuple(map(int, run.split("x"))) for run in runs]:
            if targets == 1 and runners > 1:
                continue
            name = f"fleet_{targets}_{concurrency}_{runners}"
            with runs_of(name) as settings, tempfile.TemporaryDirectory() as folder:
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("CLANDESTINO_")},
                    **settings,
                }
                _project(Path(folder), store, name, targets)
                seconds, peak = _run(Path(folder), env, concurrency, runners)
            print(
                f"{targets:7d}  {concurrency:11d}  {runners:7d}  {seconds:7.2f}  {peak:8.1f}",
                flush=True,
            )


def main() -> None:
    sizes = [int(s) for s in os.environ.get("FLEET_SIZES", "1,10,100,1000").split(",")]
    store_sizes = [int(s) for s in os.environ.get("FLEET_STORE_SIZES", "100").split(",")]
    for store in os.environ.get("FLEET_BACKENDS", "postgres").split(","):
        with tempfile.TemporaryDirectory() as folder, STORES[store](Path(folder)) as runs_of:
            _measure(store, runs_of, sizes if store == "postgres" else store_sizes)


if __name__ == "__main__":
    main()
