"""One flush per run: `python -m bench.flush` times `cdt -m` applying N migrations (one INSERT
each) and counts the run's WAL flushes at the server, by default and with
CLANDESTINO_POSTGRES_FLUSH_EACH_MIGRATION=true, on the embedded server and, given
`--postgres-url` (or CLANDESTINO_BENCH_POSTGRES_URL, a superuser's URL), on that server too:
Debian's PostgreSQL, say, whose data is on disk.

The run and the count are the test's own (tests/test_postgres_traffic.py): pg_stat_io's fsyncs
of client sessions on PostgreSQL 18+ (the flushes a commit waited for), and the whole cluster's
(pg_stat_wal.wal_sync before 18), which also counts the WAL writer's background flushes and any
other session's on that server. Each figure is one run; the machine's load shows in them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.server import postgres_server
from tests.conftest import Project
from tests.harness import PostgresHarness, _pg
from tests.test_postgres_traffic import _flushes_of_a_run

FLUSH_EACH = {"CLANDESTINO_POSTGRES_FLUSH_EACH_MIGRATION": "true"}


@contextmanager
def _project(server_url: str) -> Iterator[Project]:
    """A fresh database on the server and a project folder, both gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="clandestino-bench-flush-") as folder:
        harness = PostgresHarness(Path(folder) / "backend", server_url)
        (Path(folder) / "project").mkdir()
        try:
            yield Project(Path(folder) / "project", harness)
        finally:
            harness.cleanup()


def _flushes(flushes: tuple[int | None, int, float]) -> str:
    client, cluster, _ = flushes
    return f"{cluster:,}" if client is None else f"{client:,} ({cluster:,})"


def measure(label: str, server_url: str, sizes: list[int]) -> None:
    version = _pg(server_url, lambda c: c.fetchval("SHOW server_version"))
    print(f"\n{label}: PostgreSQL {version}, load average {os.getloadavg()[0]:.1f}")
    print("| N | seconds | WAL flushes | flush each: seconds | flush each: WAL flushes |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count in sizes:
        runs = []
        for env in ({}, FLUSH_EACH):
            with _project(server_url) as project:
                runs.append(_flushes_of_a_run(project, count, env=env))
        once, each = runs
        print(
            f"| {count:,} | {once[2]:.2f} | {_flushes(once)} | {each[2]:.2f} | {_flushes(each)} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flush", description=__doc__)
    parser.add_argument("--sizes", default="1,100,1000", help="numbers of migrations")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CLANDESTINO_BENCH_POSTGRES_URL"),
        help="a superuser's URL of another server, measured too",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with postgres_server() as embedded:
        measure("Embedded server (unix socket)", embedded.admin_url, sizes)
    if args.postgres_url:
        measure("Server at --postgres-url", args.postgres_url, sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
