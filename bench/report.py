"""The table of results (Markdown, so it goes into docs/benchmark.md as printed), its plots and
the targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.measure import Sample
from bench.suite import Results, Row
from bench.tools import Backend, Tool

__all__ = ["check_targets", "plots", "table"]

PEERS = ("yoyo", "alembic")
_BACKEND_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite", None: "-"}
_COMMANDS = {"help": "help", "apply": "apply N", "no-op": "no-op run", "list": "list"}


@dataclass(frozen=True)
class _Line:
    label: str
    row: Row
    value: Callable[[Results, Row, str], float | None]
    shown: Callable[[float], str]


def _wall(results: Results, row: Row, tool: str) -> float | None:
    sample = results.sample(row, tool)
    return None if sample is None else sample.seconds


def _rss(results: Results, row: Row, tool: str) -> float | None:
    sample: Sample | None = results.sample(row, tool)
    return None if sample is None else sample.peak_kib / 1024


def _count(results: Results, row: Row, tool: str) -> float | None:
    return results.count(row, tool)


def _seconds(value: float) -> str:
    milliseconds = value * 1000
    return f"{milliseconds:.1f} ms" if milliseconds < 100 else f"{milliseconds:,.0f} ms"


def _mib(value: float) -> str:
    return f"{value:.1f} MiB"


def _integer(value: float) -> str:
    return f"{value:,.0f}"


def _lines(results: Results) -> list[_Line]:
    lines: list[_Line] = []
    for row in results.samples:
        name = _COMMANDS.get(row[0], row[0])
        lines.append(_Line(f"{name}, wall time", row, _wall, _seconds))
        lines.append(_Line(f"{name}, peak RSS", row, _rss, _mib))
    for row in results.counts:
        command = row[0].removeprefix("statements, ")
        lines.append(_Line(f"statements sent, {_COMMANDS[command]}", row, _count, _integer))
    order = {"help": 0, "apply": 1, "no-op": 2, "list": 3}

    def key(line: _Line) -> tuple[int, int, int, int]:
        command, backend, count = line.row
        kind = 1 if "statements" in command else 0
        return (
            0 if backend is None else 1 if backend == "postgres" else 2,
            order.get(command.split(", ")[-1], 4) + 4 * kind,
            0 if "wall" in line.label else 1,
            count or 0,
        )

    return sorted(lines, key=key)


def _cell(value: float | None, shown: Callable[[float], str]) -> str:
    return "-" if value is None else shown(value)


def _ratio(mine: float | None, other: float | None) -> str:
    if mine is None or other is None or other == 0:
        return "-"
    return f"{mine / other:.2f}"


def table(results: Results, tools: Sequence[Tool]) -> str:
    keys = [tool.key for tool in tools]
    header = ["figure", "backend", "N", *(tool.label for tool in tools)]
    header += ["this / original", "this / best peer"]
    rows = [header, ["---"] * 3 + ["---:"] * (len(header) - 3)]
    for line in _lines(results):
        values = {key: line.value(results, line.row, key) for key in keys}
        count = line.row[2]
        cells = [line.label, _BACKEND_NAMES[line.row[1]], f"{count:,}" if count else "-"]
        cells += [_cell(values[key], line.shown) for key in keys]
        peers = [value for key, value in values.items() if key in PEERS and value is not None]
        mine = values.get("project")
        cells.append(_ratio(mine, values.get("original")))
        cells.append(_ratio(mine, min(peers) if peers else None))
        rows.append(cells)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def plots(results: Results, tools: Sequence[Tool], out_dir: Path) -> list[Path]:
    """The table's figures as PNGs (matplotlib, the bench extra), drawn from the printed table so
    that the plots and the table recorded beside them cannot disagree."""
    from bench.plot import parse_table, plot

    return plot(parse_table(table(results, tools)), out_dir)


@dataclass(frozen=True)
class Verdict:
    met: bool | None  # None: not measured in this run
    text: str


def check_targets(results: Results) -> list[Verdict]:
    """The issue's targets, each judged on figures taken side by side in this run."""
    verdicts = [_help_target(results)]
    verdicts += _noop_targets(results, "postgres", 1000)
    verdicts.append(_apply_target(results, "postgres", 1000))
    verdicts.append(_statements_target(results, "postgres"))
    verdicts.append(_memory_target(results, "postgres", 5000))
    verdicts.append(_memory_target(results, "sqlite", 5000))
    return verdicts


def _pair(results: Results, row: Row, other: str) -> tuple[Sample, Sample] | None:
    mine, theirs = results.sample(row, "project"), results.sample(row, other)
    return None if mine is None or theirs is None else (mine, theirs)


def _share(results: Results, row: Row, limit: float, what: str, other: str = "original") -> Verdict:
    pair = _pair(results, row, other)
    if pair is None:
        return Verdict(None, f"{what}: not measured")
    share = pair[0].seconds / pair[1].seconds
    return Verdict(
        share <= limit,
        f"{what}: {share:.0%} of the {other}'s wall time "
        f"({_seconds(pair[0].seconds)} vs {_seconds(pair[1].seconds)}; target at most {limit:.0%})",
    )


def _help_target(results: Results) -> Verdict:
    return _share(results, ("help", None, None), 0.25, "cdt -h")


def _noop_targets(results: Results, backend: Backend, count: int) -> list[Verdict]:
    row: Row = ("no-op", backend, count)
    where = f"no-op run, N = {count:,}, {_BACKEND_NAMES[backend]}"
    verdicts = [_share(results, row, 0.10, where)]
    for peer in PEERS:
        pair = _pair(results, row, peer)
        if pair is None:
            verdicts.append(Verdict(None, f"{where} vs {peer}: not measured"))
            continue
        verdicts.append(
            Verdict(
                pair[0].seconds <= pair[1].seconds,
                f"{where}: {_seconds(pair[0].seconds)} vs {peer} {_seconds(pair[1].seconds)}"
                " (target: no slower)",
            )
        )
    return verdicts


def _apply_target(results: Results, backend: Backend, count: int) -> Verdict:
    where = f"apply {count:,} migrations, {_BACKEND_NAMES[backend]}"
    return _share(results, ("apply", backend, count), 0.50, where)


def _statements_target(results: Results, backend: Backend) -> Verdict:
    found = {
        row[2]: counts["project"]
        for row, counts in results.counts.items()
        if row[0] == "statements, no-op" and row[1] == backend and row[2] and "project" in counts
    }
    if not found:
        return Verdict(None, "statements per no-op run: not measured")
    shown = ", ".join(f"N={count:,}: {found[count]}" for count in sorted(found))
    values = set(found.values())
    return Verdict(
        len(values) == 1 and max(values) <= 4,
        f"statements per no-op run ({_BACKEND_NAMES[backend]}): {shown}"
        " (target: the same at every N, at most 4)",
    )


def _memory_target(results: Results, backend: Backend, count: int) -> Verdict:
    where = f"peak RSS of the no-op run, N = {count:,}, {_BACKEND_NAMES[backend]}"
    pair = _pair(results, ("no-op", backend, count), "original")
    if pair is None:
        return Verdict(None, f"{where}: not measured")
    mine, theirs = pair[0].peak_kib / 1024, pair[1].peak_kib / 1024
    return Verdict(
        mine <= theirs, f"{where}: {_mib(mine)} vs the original's {_mib(theirs)} (target: no more)"
    )
