"""Plots of the benchmark's table, for the documentation's benchmark page.

They are drawn from the Markdown table the benchmark prints (the one recorded in
docs/benchmark.md), so the page's plots and its table always show the same figures, and plots can
be drawn again without running the benchmark again:

    python -m bench.plot docs/benchmark.md docs/benchmark
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cell", "parse_table", "plot"]

# The figures plotted, one panel each, per backend: wall time against N.
PANELS = ("apply N, wall time", "no-op run, wall time", "list, wall time")
_NUMBER = re.compile(r"^([\d,]+(?:\.\d+)?)(?: (ms|MiB))?$")


@dataclass(frozen=True)
class Cell:
    figure: str  # "apply N, wall time"
    backend: str  # "PostgreSQL", "SQLite", "-"
    count: int | None  # N, or None
    tool: str  # the column's label: "original 0.1.14", "this project", ...
    value: float  # in the table's unit: ms, MiB or a count


def parse_table(markdown: str) -> list[Cell]:
    """Every figure of the first table whose header starts `| figure | backend | N |`."""
    lines = [line.strip() for line in markdown.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("| figure | backend | N |"))
    header = [part.strip() for part in lines[start].strip("|").split("|")]
    tools = [label for label in header[3:] if "/" not in label]  # not the ratio columns
    cells: list[Cell] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        parts = [part.strip() for part in line.strip("|").split("|")]
        figure, backend, count = parts[0], parts[1], parts[2]
        for tool, text in zip(tools, parts[3:], strict=False):
            match = _NUMBER.match(text)
            if match is None:
                continue
            number = float(match.group(1).replace(",", ""))
            n = None if count == "-" else int(count.replace(",", ""))
            cells.append(Cell(figure, backend, n, tool, number))
    return cells


def plot(cells: list[Cell], out_dir: Path) -> list[Path]:
    """One PNG per backend (wall time against N, a panel per command) and one for `-h`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tools = list(dict.fromkeys(cell.tool for cell in cells))
    backends = sorted({cell.backend for cell in cells if cell.count is not None})
    for backend in backends:
        figure, axes = plt.subplots(1, len(PANELS), figsize=(12, 3.6), constrained_layout=True)
        for axis, panel in zip(axes, PANELS, strict=True):
            for tool in tools:
                points = sorted(
                    (cell.count, cell.value)
                    for cell in cells
                    if (cell.figure, cell.backend, cell.tool) == (panel, backend, tool)
                    and cell.count is not None
                )
                if points:
                    counts, values = zip(*points, strict=True)
                    axis.plot(
                        counts,
                        values,
                        marker="o",
                        label=tool,
                        linewidth=2.5 if tool == "this project" else 1.2,
                    )
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_title(panel.removesuffix(", wall time"))
            axis.set_xlabel("migrations (N)")
            axis.set_ylabel("wall time (ms)")
            axis.grid(True, which="major", alpha=0.3)
        axes[0].legend(fontsize="small")
        figure.suptitle(f"{backend}: wall time of the whole process (median)")
        path = out_dir / f"{backend.lower()}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    helps = [(cell.tool, cell.value) for cell in cells if cell.figure == "help, wall time"]
    if helps:
        figure, axis = plt.subplots(figsize=(6, 2.6), constrained_layout=True)
        labels, values = zip(*helps, strict=True)
        axis.barh(
            labels, values, color=["C1" if label == "this project" else "C0" for label in labels]
        )
        axis.invert_yaxis()
        axis.set_xlabel("wall time of `-h` / `--help` (ms)")
        path = out_dir / "help.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.plot TABLE.md OUT_DIR", file=sys.stderr)
        return 2
    for path in plot(parse_table(Path(argv[0]).read_text(encoding="utf-8")), Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
