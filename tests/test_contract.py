"""The backend contract: every backend, on a real database, through the real `cdt` command.

Each test asserts on the database itself (the migrations' effects and the control records, read
by the harness directly), on the exit status and on the printed lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Project, step_lines
from tests.interruptions import refused_then_repaired, start_and_wait_for

OK, ERROR, SKIPPED = "✅", "⚠️", "⏭️"


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


def test_applies_pending_migrations_in_order_exactly_once(project: Project) -> None:
    names = [project.add_effect(tag).stem for tag in ("alpha", "beta", "gamma")]

    first = project.cdt("-m")

    assert first.returncode == 0, first.stderr
    assert project.harness.effects() == ["alpha", "beta", "gamma"]
    assert project.harness.records() == names
    assert [f"-> running {name} {OK}" for name in names] == step_lines(first.stdout)
    assert "Done: 3 applied, 0 skipped, 0 failed" in first.stdout

    second = project.cdt("-m")

    assert second.returncode == 0, second.stderr
    assert project.harness.effects() == ["alpha", "beta", "gamma"]
    assert [f"-> running {name} {SKIPPED}" for name in names] == step_lines(second.stdout)


def test_adopts_the_original_tools_records_without_rerunning(project: Project) -> None:
    old = [project.add_effect(tag).stem for tag in ("old1", "old2")]
    new = project.add_effect("new").stem
    project.harness.write_original_control(old)

    result = project.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert project.harness.effects() == ["new"]
    assert project.harness.records() == [*old, new]
    assert f"-> running {old[0]} {SKIPPED}" in step_lines(result.stdout)
    assert project.cdt("-m").returncode == 0
    assert project.harness.effects() == ["new"]


def test_many_deployers_at_once_apply_each_migration_once(project: Project, tmp_path: Path) -> None:
    if not project.harness.locks:
        # Nothing to lock with (Qdrant): what a user must see instead is the run saying so.
        project.add_effect("only")
        alone = project.cdt("-m")
        assert alone.returncode == 0, alone.stderr
        assert "this repository has no lock: never run two deployers at once" in alone.stderr
        assert project.harness.effects() == ["only"]
        return
    barrier = tmp_path / "barrier"
    tags = [f"m{index:02d}" for index in range(20)]
    names = [project.add_effect(tags[0], wait_for=barrier).stem]
    names += [project.add_effect(tag).stem for tag in tags[1:]]
    count = project.harness.concurrent_deployers

    runs = [_Deployer(project.start("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "300"}))]
    runs += [_Deployer(project.start("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "300"}))
             for _ in range(count - 1)]  # fmt: skip
    # Every deployer started; one holds the lock, blocked in the first migration, and all the
    # others say they wait for it, before the barrier opens: they overlap for real.
    deadline = time.monotonic() + 120
    reached = Path(f"{barrier}.reached")
    while not (reached.exists() and sum(run.waiting() for run in runs) >= count - 1):
        assert all(run.process.poll() is None for run in runs), [r.finish() for r in runs]
        assert time.monotonic() < deadline, [run.text() for run in runs]
        time.sleep(0.05)
    barrier.touch()
    outcomes = [run.finish() for run in runs]

    assert [code for code, _ in outcomes] == [0] * count, outcomes
    assert sorted(project.harness.effects()) == tags
    assert project.harness.records() == names
    assert sum(run.waiting() for run in runs) == count - 1
    appliers = [run for run in runs if f"-> running {names[0]} {OK}" in run.text()]
    assert len(appliers) == 1, [run.text() for run in runs]


class _Deployer:
    """A running `cdt -m` whose output is read as it comes, so a test can see it wait."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._lines: list[str] = []
        self._errors = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def text(self) -> str:
        return "".join(self._lines)

    def waiting(self) -> bool:
        return "waiting for the lock held by" in self.text()

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(timeout=240)
        self._reader.join(timeout=30)
        errors = self.process.stderr.read() if self.process.stderr else ""
        return code, errors


def test_failing_migration_stops_the_run_and_records_nothing(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "down-called"
    first = project.add_effect("first").stem
    failing = project.add_effect("broken", fail=True, down_marker=marker)
    later = project.add_effect("later").stem

    result = project.cdt("-m")

    assert result.returncode == 1
    assert project.harness.records() == [first]
    assert project.harness.effects() == ["first"]
    # The clean-up down() runs where the rollback did not already undo the step.
    assert marker.exists() is not project.harness.rollback_undoes_failed_steps
    assert f"-> running {failing.stem} {ERROR}" in step_lines(result.stdout)
    assert later not in result.stdout
    error_lines = [line for line in _lines(result.stderr) if line.startswith("error:")]
    assert len(error_lines) == 1
    assert f"{failing}, line {_line_of(failing, 'raise RuntimeError')}" in error_lines[0]
    assert "RuntimeError: boom in broken" in error_lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_killed_run_leaves_nothing_half_done_or_says_so(project: Project) -> None:
    project.add_effect("before")
    slow = project.add_effect("slow", sleep=60)
    run = start_and_wait_for(project, "slow")

    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    assert slow.stem not in project.harness.records()
    if project.harness.leaves_markers:
        refused_then_repaired(project, slow, "slow")
    else:
        assert "slow" not in project.harness.effects()
        # Whatever the backend kept of the interrupted run, records and effects agree.
        assert len(project.harness.effects()) == len(project.harness.records())
    again = project.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "20"})
    assert again.returncode == 0, again.stderr
    assert sorted(project.harness.effects()) == ["before", "slow"]
    assert len(project.harness.records()) == 2


def test_a_dead_holders_lock_is_taken_over_after_its_lease(lease_project: Project) -> None:
    project = lease_project
    project.add_effect("slow", sleep=60)
    run = start_and_wait_for(project, "slow")
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    project.harness.remove_effects("slow")

    repaired = project.cdt("--repair", "--yes", env={"CLANDESTINO_LOCK_TIMEOUT": "30"})

    assert repaired.returncode == 0, repaired.stderr
    assert "took the lock over from" in repaired.stderr and "its lease expired" in repaired.stderr
    assert project.cdt("-m").returncode == 0
    assert project.harness.effects() == ["slow"]


def test_rollback_last_then_n_then_to_a_target(project: Project) -> None:
    names = [project.add_effect(tag).stem for tag in ("a", "b", "c", "d", "e")]
    assert project.cdt("-m").returncode == 0

    last = project.cdt("-rm", "-y")
    assert last.returncode == 0, last.stderr
    assert f"-> rolling back {names[4]} {OK}" in step_lines(last.stdout)
    assert project.harness.effects() == ["a", "b", "c", "d"]
    assert project.harness.records() == names[:4]

    two = project.cdt("-rm", "2", "--yes")
    assert two.returncode == 0, two.stderr
    assert project.harness.effects() == ["a", "b"]
    assert project.harness.records() == names[:2]

    assert project.cdt("-m").returncode == 0
    to = project.cdt("-rm", "--to", names[0], "-y")
    assert to.returncode == 0, to.stderr
    assert project.harness.effects() == ["a"]
    assert project.harness.records() == names[:1]
    rolled = step_lines(to.stdout)
    assert rolled == [f"-> rolling back {name} {OK}" for name in reversed(names[1:])]


BROKEN_FILES = {
    "syntax error": ("class Migration(:\n    pass\n", "line 1", "syntax error"),
    "import error": (
        "import os\nimport no_such_module_here\n",
        "line 2",
        "No module named 'no_such_module_here'",
    ),
    "no Migration class": ("X = 1\n", "no Migration class", "no Migration class"),
    "up not async": (
        "from clandestino_interfaces import AbstractMigration\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    def up(self):\n        pass\n\n"
        "    async def down(self):\n        pass\n",
        "line 5",
        "Migration.up is not an async function",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_broken_file_stops_the_run_before_anything_is_written(
    project: Project, case: str
) -> None:
    source, where, what = BROKEN_FILES[case]
    project.add_effect("good")
    broken = project.add(source, "broken")

    result = project.cdt("-m")

    assert result.returncode == 2
    assert project.harness.effects() == []
    assert not project.harness.control_exists()
    # A store without a lock says so first (Qdrant); the error is still one line.
    no_lock = "warning: this repository has no lock: never run two deployers at once\n"
    error = result.stderr.removeprefix(no_lock if not project.harness.locks else "").strip()
    assert error.startswith("error:") and len(error.splitlines()) == 1, error
    assert str(broken) in error and where in error and what in error
    assert "Traceback" not in result.stdout + result.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(project: Project) -> None:
    names = [project.add_effect(tag).stem for tag in ("one", "two")]

    result = project.cdt("-m", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert [f"-> would run {name}" for name in names] == [
        line for line in step_lines(result.stdout) if line.startswith("-> would run")
    ]
    assert not project.harness.control_exists()
    assert project.harness.effects() == []


def test_migrate_to_stops_after_the_target(project: Project) -> None:
    names = [project.add_effect(tag).stem for tag in ("one", "two", "three")]

    result = project.cdt("-m", "--to", names[1])

    assert result.returncode == 0, result.stderr
    assert project.harness.effects() == ["one", "two"]
    assert project.harness.records() == names[:2]


def test_list_shows_applied_pending_missing_and_changed(project: Project) -> None:
    first = project.add_effect("first")
    gone = project.add_effect("gone")
    assert project.cdt("-m").returncode == 0
    first.write_text(first.read_text() + "\n# edited after it was applied\n")
    gone.unlink()
    pending = project.add_effect("pending")

    result = project.cdt("-lm")

    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line for line in _lines(result.stdout) if line.startswith("migration_")
    }
    assert "applied" in rows[first.stem] and "changed since applied" in rows[first.stem]
    assert "applied" in rows[gone.stem] and "file missing" in rows[gone.stem]
    assert rows[pending.stem].split()[1] == "pending"


def test_ctrl_c_stops_the_running_migration_and_exits_130(project: Project) -> None:
    project.add_effect("done_before")
    slow = project.add_effect("interrupted", sleep=60)
    run = start_and_wait_for(project, "interrupted")

    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)

    assert run.returncode == 130, (out, err)
    assert f"-> running {slow.stem} {ERROR}" in step_lines(out)
    assert "Traceback" not in out + err
    assert slow.stem not in project.harness.records()
    if project.harness.leaves_markers:
        refused_then_repaired(project, slow, "interrupted")
    else:
        assert "interrupted" not in project.harness.effects()
    again = project.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "5"})
    assert again.returncode == 0, again.stderr
    assert sorted(project.harness.effects()) == ["done_before", "interrupted"]


def test_baseline_records_without_running_on_every_backend(project: Project) -> None:
    names = [project.add_effect(tag).stem for tag in ("old", "new")]

    baselined = project.cdt("--baseline", names[0])
    applied = project.cdt("-m")

    assert baselined.returncode == 0, baselined.stderr
    assert applied.returncode == 0, applied.stderr
    assert project.harness.effects() == ["new"]
    assert project.harness.records() == names


def test_the_ci_gate_strict_and_repair_agree_on_every_backend(project: Project) -> None:
    edited = project.add_effect("edited")
    pending = project.cdt("-lm", "--check")
    assert project.cdt("-m").returncode == 0
    clean = project.cdt("-lm", "--check")
    edited.write_text(edited.read_text() + "\n# changed after it was applied\n")

    changed = project.cdt("-lm", "--check")
    strict = project.cdt("-m", "--strict")
    repaired = project.cdt("--repair", "--yes")
    after = project.cdt("-lm", "--check")

    assert pending.returncode == 1 and "1 pending" in pending.stderr
    assert clean.returncode == 0, clean.stderr
    assert changed.returncode == 1 and "1 changed" in changed.stderr
    assert strict.returncode == 2 and "changed since it was applied" in strict.stderr
    assert repaired.returncode == 0, repaired.stderr
    assert f"-> repaired {edited.stem}: its current content is now the one applied" in (
        repaired.stdout
    )
    assert after.returncode == 0, after.stderr
    assert project.harness.effects() == ["edited"]


@pytest.mark.parametrize("meanwhile", ["rolled back", "applied"])
def test_a_rollback_that_waited_for_the_lock_reads_the_records_again(
    locking_project: Project, tmp_path: Path, meanwhile: str
) -> None:
    """Two deployers overlap for real: the first holds the lock, blocked at a barrier in its
    step, while the second has chosen what to roll back and waits for the lock. Once it has the
    lock, the second must see what the first changed and not roll back on a stale choice."""
    project = locking_project
    barrier, log = tmp_path / "barrier", tmp_path / "down.log"
    names = [project.add_effect("a", down_log=log).stem]
    names.append(project.add_effect("b", down_log=log, down_wait_for=barrier).stem)
    assert project.cdt("-m").returncode == 0
    long_wait = {"CLANDESTINO_LOCK_TIMEOUT": "300", "CLANDESTINO_LOCK_LEASE": "30"}
    if meanwhile == "rolled back":
        first = _Deployer(project.start("-rm", "-y", env=long_wait))
    else:
        names.append(project.add_effect("c", down_log=log, wait_for=barrier).stem)
        first = _Deployer(project.start("-m", env=long_wait))
    _wait_until(lambda: Path(f"{barrier}.reached").exists(), first)
    second = _Deployer(project.start("-rm", "-y", env=long_wait))
    _wait_until(second.waiting, first, second)
    barrier.touch()
    first_code, first_errors = first.finish()
    second_code, second_errors = second.finish()

    assert first_code == 0, first_errors
    assert second_code == 2, (second.text(), second_errors)
    assert "the applied migrations changed while waiting" in second_errors
    assert not [line for line in step_lines(second.text()) if "rolling back" in line]
    if meanwhile == "rolled back":
        assert log.read_text().splitlines() == ["b"]
        assert project.harness.effects() == ["a"]
        assert project.harness.records() == names[:1]
    else:
        assert not log.exists()
        assert project.harness.effects() == ["a", "b", "c"]
        assert project.harness.records() == names


def _wait_until(condition: object, *runs: _Deployer) -> None:
    """Wait for `condition()` while every run in `runs` is still running."""
    assert callable(condition)
    deadline = time.monotonic() + 120
    while not condition():
        assert all(run.process.poll() is None for run in runs), [
            (run.text(), run.finish()) for run in runs
        ]
        assert time.monotonic() < deadline, [run.text() for run in runs]
        time.sleep(0.05)


def test_an_interrupted_step_is_refused_even_when_nothing_is_pending(
    marking_project: Project,
) -> None:
    """A rollback killed inside a down() that runs outside a transaction leaves its marker on a
    migration still recorded as applied: nothing is pending, yet `cdt -m` must not call that
    nothing to do, and the CI gate must fail, until the user repairs."""
    project, harness = marking_project, marking_project.harness
    kept = project.add_effect("kept").stem
    undone = project.add_effect("undone", transactional=False, down_sleep=60).stem
    assert project.cdt("-m").returncode == 0
    run = project.start("-rm", "-y", env={"CLANDESTINO_LOCK_LEASE": "3"})
    deadline = time.monotonic() + 60
    while not harness.started_marker("undone.down").exists():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the slow down() never started"
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    wait = {"CLANDESTINO_LOCK_TIMEOUT": "30"}

    refused = project.cdt("-m", env=wait)
    gate = project.cdt("-lm", "--check", env=wait)

    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    errors = [line for line in _lines(refused.stderr) if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert f"{undone}: down() by " in errors[0] and "never finished" in errors[0], errors[0]
    assert "cdt --repair" in errors[0]
    assert "Done:" not in refused.stdout
    assert gate.returncode == 1, (gate.stdout, gate.stderr)
    assert "1 interrupted" in gate.stderr
    assert harness.records() == [kept, undone]
    assert harness.effects() == ["kept"]

    repaired = project.cdt("--repair", "--yes", env=wait)
    assert repaired.returncode == 0, repaired.stderr
    assert f"-> repaired {undone}:" in repaired.stdout
    assert project.cdt("-lm", "--check").returncode == 0
    again = project.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert harness.records() == [kept, undone]
