"""`python -m bench`: set up the tools, measure them, print the table and the targets.

The table goes to standard output, progress to standard error. `make bench` runs it as it is;
`--sizes 10,100 --runs 3 --backends sqlite` gives a quick look.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.envs import ensure_env
from bench.report import check_targets, plots, table
from bench.server import postgres_server
from bench.suite import Suite
from bench.tools import TOOLS, Backend

BACKENDS: tuple[Backend, ...] = ("postgres", "sqlite")
# Where the plots of the table go: the documentation's benchmark page shows them.
PLOTS = Path(__file__).resolve().parent.parent / "docs" / "benchmark"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000", help="numbers of migrations")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="postgres,sqlite")
    return parser.parse_args(argv)


def _machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kib / 1024**2:.0f} GiB of memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    backends = [backend for backend in BACKENDS if backend in args.backends.split(",")]
    started = time.monotonic()
    tools = [tool_class(ensure_env(tool_class)) for tool_class in TOOLS.values()]
    with ExitStack() as stack:
        postgres = stack.enter_context(postgres_server()) if "postgres" in backends else None
        workdir = Path(tempfile.mkdtemp(prefix="clandestino-bench-work-"))
        stack.callback(shutil.rmtree, workdir, True)
        suite = Suite(tools, postgres, workdir, args.runs)
        suite.help()
        for size in sizes:
            for backend in backends:
                suite.backend(backend, size)
            suite.discard(size)
        server = postgres.version() if postgres is not None else "not used"
    minutes = (time.monotonic() - started) / 60
    print(f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}.")
    print(f"PostgreSQL: {server}, on a unix socket. Median of {args.runs} runs after a warm-up;")
    print(f"wall time and peak RSS of the whole process. Total benchmark time: {minutes:.1f} min.")
    print()
    print(table(suite.results, tools))
    print()
    for path in plots(suite.results, tools, PLOTS):
        print(f"Plot: {path}", file=sys.stderr)
    print("Targets (this project against the others, measured side by side in this run):")
    for verdict in check_targets(suite.results):
        mark = "n/a " if verdict.met is None else "met " if verdict.met else "MISS"
        print(f"- [{mark}] {verdict.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
