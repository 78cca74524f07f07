"""Timing a command as a whole process: wall time from spawn to exit, and its peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Command", "CommandFailed", "Sample", "median", "run"]


@dataclass(frozen=True)
class Command:
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    seconds: float
    # Peak resident set size of the process, in KiB (ru_maxrss on Linux).
    peak_kib: int


class CommandFailed(RuntimeError):
    pass


def run(command: Command) -> Sample:
    """Run `command` once, its output discarded, and fail loudly unless it exits 0."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command.argv),
            cwd=command.cwd,
            env=dict(command.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        # wait4 rather than Popen.wait: it also returns the child's resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise CommandFailed(
                f"{' '.join(command.argv)} (in {command.cwd}) exited {process.returncode}:\n{tail}"
            )
    return Sample(seconds, usage.ru_maxrss)


def median(samples: Sequence[Sample]) -> Sample:
    """The median wall time and the median peak RSS of `samples`."""
    return Sample(
        statistics.median(sample.seconds for sample in samples),
        round(statistics.median(sample.peak_kib for sample in samples)),
    )
