"""The measurements: every command of every tool, at each N, on each backend.

Tools take turns within each round (original, project, yoyo, alembic, then again), so that a
noisy moment of the machine falls on all of them rather than on one. The first round is a
warm-up (it also writes the tools' bytecode caches) and is not counted.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Command, Sample, median, run
from bench.server import Postgres
from bench.tools import Backend, Target, Tool

__all__ = ["Figure", "Results", "Suite"]

# What a row of the table holds: a timed command (wall time and peak RSS) or a count.
Figure = str
Row = tuple[Figure, Backend | None, int | None]


@dataclass
class Results:
    """Every figure measured: (figure, backend, N) -> tool key -> value."""

    samples: dict[Row, dict[str, Sample]] = field(default_factory=dict)
    counts: dict[Row, dict[str, int]] = field(default_factory=dict)

    def sample(self, row: Row, tool: str) -> Sample | None:
        return self.samples.get(row, {}).get(tool)

    def count(self, row: Row, tool: str) -> int | None:
        return self.counts.get(row, {}).get(tool)


class Suite:
    def __init__(
        self,
        tools: Sequence[Tool],
        postgres: Postgres | None,
        workdir: Path,
        runs: int,
    ) -> None:
        self.tools = tools
        self.postgres = postgres
        self.workdir = workdir
        self.runs = runs
        self.results = Results()
        self._started = time.monotonic()

    # -- helpers ------------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"[{elapsed:6.0f} s] {text}", file=sys.stderr, flush=True)

    def _folder(self, tool: Tool, count: int) -> Path:
        return self.workdir / tool.key / str(count)

    def _target(self, tool: Tool, backend: Backend, count: int, purpose: str) -> Target:
        """A fresh, empty target: a new database, or no SQLite file yet."""
        name = f"{tool.key}_{count}_{purpose}"
        if backend == "postgres":
            assert self.postgres is not None
            self.postgres.fresh_database(name)
            return Target("postgres", database=name, socket_dir=self.postgres.socket_dir)
        path = self._folder(tool, count) / f"{purpose}.sqlite"
        for suffix in ("", "-journal", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return Target("sqlite", path=path)

    def _applied(self, tool: Tool, target: Target) -> int:
        if target.backend == "postgres":
            assert self.postgres is not None
            return int(self.postgres.fetchval(target.database, tool.count_sql))
        connection = sqlite3.connect(target.sqlite_path)
        try:
            return int(connection.execute(tool.count_sql).fetchone()[0])
        finally:
            connection.close()

    def _check_applied(self, tool: Tool, target: Target, count: int) -> None:
        applied = self._applied(tool, target)
        if applied != count:
            raise RuntimeError(f"{tool.label} applied {applied} of {count} on {target}")

    def _rounds(
        self,
        row: Row,
        command: Callable[[Tool], Command],
        before: Callable[[Tool, int], None] | None = None,
        after: Callable[[Tool, int], None] | None = None,
    ) -> None:
        """Warm-up, then `runs` rounds of every tool in turn; `before`/`after` are not timed."""
        taken: dict[str, list[Sample]] = {tool.key: [] for tool in self.tools}
        for round_number in range(self.runs + 1):
            for tool in self.tools:
                if before is not None:
                    before(tool, round_number)
                sample = run(command(tool))
                if after is not None:
                    after(tool, round_number)
                if round_number > 0:
                    taken[tool.key].append(sample)
        medians = {key: median(samples) for key, samples in taken.items()}
        self.results.samples[row] = medians
        shown = ", ".join(
            f"{key} {value.seconds * 1000:.0f} ms {value.peak_kib / 1024:.0f} MiB"
            for key, value in medians.items()
        )
        self._log(f"{row[0]} {row[1] or ''} N={row[2] or '-'}: {shown}")

    # -- the figures --------------------------------------------------------------------------

    def help(self) -> None:
        folder = self.workdir / "help"
        folder.mkdir(parents=True, exist_ok=True)
        self._rounds(("help", None, None), lambda tool: tool.help(folder))

    def prepare(self, count: int) -> None:
        for tool in self.tools:
            folder = self._folder(tool, count)
            if not folder.exists():
                tool.write_migrations(folder, count)

    def discard(self, count: int) -> None:
        for tool in self.tools:
            shutil.rmtree(self._folder(tool, count), ignore_errors=True)

    def backend(self, backend: Backend, count: int) -> None:
        self.prepare(count)
        self._apply(backend, count)
        self._noop_and_list(backend, count)

    def _apply(self, backend: Backend, count: int) -> None:
        targets: dict[str, Target] = {}

        def fresh(tool: Tool, round_number: int) -> None:
            targets[tool.key] = self._target(tool, backend, count, "apply")
            if round_number == 0:
                self._reset_statements(backend)

        def check(tool: Tool, round_number: int) -> None:
            # Counted first: the check's own query goes to the same database.
            if round_number == 0:
                self._count_statements(("statements, apply", backend, count), tool, targets)
            self._check_applied(tool, targets[tool.key], count)

        self._rounds(
            ("apply", backend, count),
            lambda tool: tool.apply(self._folder(tool, count), targets[tool.key]),
            before=fresh,
            after=check,
        )
        for tool in self.tools:
            self._drop(targets[tool.key])

    def _noop_and_list(self, backend: Backend, count: int) -> None:
        targets = {tool.key: self._target(tool, backend, count, "noop") for tool in self.tools}
        for tool in self.tools:
            run(tool.apply(self._folder(tool, count), targets[tool.key]))
            self._check_applied(tool, targets[tool.key], count)

        def reset(tool: Tool, round_number: int) -> None:
            if round_number == 0:
                self._reset_statements(backend)

        def counted(tool: Tool, round_number: int) -> None:
            if round_number == 0:
                self._count_statements(("statements, no-op", backend, count), tool, targets)

        def noop(tool: Tool) -> Command:
            return tool.apply(self._folder(tool, count), targets[tool.key])

        self._rounds(("no-op", backend, count), noop, before=reset, after=counted)
        self._rounds(
            ("list", backend, count),
            lambda tool: tool.listing(self._folder(tool, count), targets[tool.key]),
        )
        for tool in self.tools:
            self._check_applied(tool, targets[tool.key], count)
            self._drop(targets[tool.key])

    def _reset_statements(self, backend: Backend) -> None:
        if backend == "postgres":
            assert self.postgres is not None
            self.postgres.reset_statements()

    def _count_statements(self, row: Row, tool: Tool, targets: dict[str, Target]) -> None:
        if row[1] == "postgres":
            assert self.postgres is not None
            found = self.postgres.statements(targets[tool.key].database)
            self.results.counts.setdefault(row, {})[tool.key] = found

    def _drop(self, target: Target) -> None:
        if target.backend == "postgres":
            assert self.postgres is not None
            self.postgres.drop_database(target.database)
        else:
            target.sqlite_path.unlink(missing_ok=True)
