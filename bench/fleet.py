"""The fleet section: `python -m bench.fleet` migrates 1, 10, 100 and 1,000 PostgreSQL schemas
(three migrations each) at concurrency 1, 4 and 16, and 100 schemas with 3 runners at once,
each timed as a real `cdt -m --fleet` process, with its peak memory (ru_maxrss of the child).

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
from pathlib import Path

from bench.server import postgres_server

CDT = str(Path(sys.executable).with_name("cdt"))
MIGRATION = """
import asyncio

from clandestino_interfaces import AbstractMigration
from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()

    async def up(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS t{n} (id int)")
            if {sleep}:
                await asyncio.sleep({sleep})

    async def down(self) -> None:
        async with self.infra.connection() as conn:
            await conn.execute("DROP TABLE t{n}")
"""


def _project(root: Path, schemas: int) -> None:
    (root / "migrations").mkdir(parents=True)
    for n in range(3):
        path = root / "migrations" / f"migration_2024_01_01_00_00_0{n}_m{n}.py"
        sleep = int(os.environ.get("FLEET_SLEEP_MS", "0")) / 1000
        path.write_text(MIGRATION.format(n=n, sleep=sleep))
    (root / "targets.txt").write_text("".join(f"s{i:04d}\n" for i in range(schemas)))


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


def main() -> None:
    sizes = [int(s) for s in os.environ.get("FLEET_SIZES", "1,10,100,1000").split(",")]
    with postgres_server() as server:
        print(f"PostgreSQL {server.version()}, load average {os.getloadavg()[0]:.1f}")
        print("schemas  concurrency  runners  seconds  peak MiB (this run's largest process)")
        for schemas in sizes:
            runs = os.environ.get("FLEET_RUNS", "1x1,4x1,16x1,4x3").split(",")
            for concurrency, runners in [tuple(map(int, run.split("x"))) for run in runs]:
                if schemas == 1 and runners > 1:
                    continue
                database = f"fleet_{schemas}_{concurrency}_{runners}"
                server.fresh_database(database)
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("CLANDESTINO_")},
                    "CLANDESTINO_MIGRATION_REPO": "postgres",
                    "CLANDESTINO_POSTGRES_CONNECTION_STRING": server.url(database),
                }
                with tempfile.TemporaryDirectory() as folder:
                    _project(Path(folder), schemas)
                    seconds, peak = _run(Path(folder), env, concurrency, runners)
                print(f"{schemas:7d}  {concurrency:11d}  {runners:7d}  {seconds:7.2f}  {peak:8.1f}")
                server.drop_database(database)


if __name__ == "__main__":
    main()
