"""Helpers for the tests that stop a run in the middle of a migration (a signal, a kill, a lost
connection) and then check what the next runs make of it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import Project

__all__ = ["error_lines", "refused_then_repaired", "start_and_wait_for"]


def start_and_wait_for(
    project: Project, tag: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `cdt -m` and return once the sleeping migration `tag` has written its effect.

    Its lock lease is short, so that a test need not wait long for it to run out; `env` adds to
    or overrides its settings."""
    run = project.start("-m", env={"CLANDESTINO_LOCK_LEASE": "3", **(env or {})})
    deadline = time.monotonic() + 60
    while not project.harness.started_marker(tag).exists():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, f"the slow migration {tag} never started"
        time.sleep(0.05)
    return run


def refused_then_repaired(
    project: Project, interrupted: Path, tag: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """On a store without transactions: the next run refuses until the user repairs.

    Returns the refused run, for its output; `env` goes to each `cdt` run."""
    refused = project.cdt("-m", env=env)
    assert refused.returncode == 1, refused.stderr
    assert f"{interrupted.stem}: up() by " in refused.stderr
    assert "never finished" in refused.stderr and "cdt --repair" in refused.stderr
    listing = project.cdt("-lm", env=env)
    assert "interrupted" in next(
        line for line in listing.stdout.splitlines() if line.startswith(interrupted.stem)
    )
    project.harness.remove_effects(tag)  # what the user puts right by hand
    repaired = project.cdt("--repair", "--yes", env=env)
    assert repaired.returncode == 0, repaired.stderr
    assert f"-> repaired {interrupted.stem}: pending, runs again" in repaired.stdout
    return refused


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines a run printed (warnings and other lines left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
