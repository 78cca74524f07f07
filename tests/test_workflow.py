"""A team's daily commands: the policy for missing, changed and out-of-order files (--strict),
--baseline, the CI gate -lm --check, --repair of checksums, and output for people and for CI:
stray files, secrets never printed, colour only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CDT, Project

SECRET = "pa55:w0rd@never-shown"


def _applied_then(project: Project, change: str) -> tuple[Path, Path]:
    """Two migrations applied, then the change a teammate makes to the folder."""
    first = project.add_effect("first")
    second = project.add_effect("second")
    assert project.cdt("-m").returncode == 0
    if change == "missing":
        second.unlink()
    elif change == "changed":
        first.write_text(first.read_text() + "\n# edited after it was applied\n")
    elif change == "out_of_order":
        late = first.with_name(first.name.replace("_first", "_early"))
        late = late.with_name(late.name.replace("00_00_01", "00_00_00"))
        late.write_text(project.harness.effect_migration("early"))
    return first, second


@pytest.mark.parametrize(
    ("change", "problem", "warning"),
    [
        ("missing", "is applied but its file is gone", "restore it, or delete its record"),
        ("changed", "changed since it was applied", "accept it with `cdt --repair`"),
        ("out_of_order", "is pending but sorts before", "runs out of order"),
    ],
)
def test_disagreements_warn_by_default_and_strict_refuses(
    sqlite_project: Project, change: str, problem: str, warning: str
) -> None:
    _applied_then(sqlite_project, change)
    before = sqlite_project.harness.effects()

    strict = sqlite_project.cdt("-m", "--strict")
    by_setting = sqlite_project.cdt("-m", env={"CLANDESTINO_STRICT": "true"})

    for refused, named in (
        (strict, "error: --strict: "),
        (by_setting, "error: CLANDESTINO_STRICT=true (from the environment): "),
    ):
        assert refused.returncode == 2
        assert refused.stderr.startswith(named) and problem in refused.stderr
    assert sqlite_project.harness.effects() == before
    warned = sqlite_project.cdt("-m")
    assert warned.returncode == 0, warned.stderr
    assert "warning: " in warned.stderr and warning in warned.stderr
    if change == "out_of_order":
        assert sqlite_project.harness.effects() == [*before, "early"]


def test_baseline_records_without_running_then_migrate_runs_the_rest(
    sqlite_project: Project,
) -> None:
    names = [sqlite_project.add_effect(tag).stem for tag in ("old1", "old2", "new")]

    baselined = sqlite_project.cdt("--baseline", names[1])
    applied = sqlite_project.cdt("-m")

    assert baselined.returncode == 0, baselined.stderr
    assert [f"-> baselined {name} ✅" for name in names[:2]] == [
        line for line in baselined.stdout.splitlines() if line.startswith("-> baselined")
    ]
    assert applied.returncode == 0, applied.stderr
    assert sqlite_project.harness.effects() == ["new"]
    assert sqlite_project.harness.records() == names


def test_the_ci_gate_fails_on_pending_and_changed_and_passes_when_all_is_applied(
    sqlite_project: Project,
) -> None:
    first = sqlite_project.add_effect("one")

    pending = sqlite_project.cdt("-lm", "--check")
    assert sqlite_project.cdt("-m").returncode == 0
    clean = sqlite_project.cdt("-lm", "--check")
    first.write_text(first.read_text() + "\n# edited\n")
    changed = sqlite_project.cdt("-lm", "--check")

    assert pending.returncode == 1 and "check failed: 1 pending" in pending.stderr
    assert clean.returncode == 0, clean.stderr
    assert changed.returncode == 1 and "check failed: 1 changed" in changed.stderr
    assert first.stem in changed.stdout


def test_repair_accepts_a_changed_file_as_it_is_now(sqlite_project: Project) -> None:
    first = sqlite_project.add_effect("edited")
    assert sqlite_project.cdt("-m").returncode == 0
    first.write_text(first.read_text() + "\n# a comment added later\n")

    repaired = sqlite_project.cdt("--repair", "--yes")

    assert repaired.returncode == 0, repaired.stderr
    assert f"-> repaired {first.stem}: its current content is now the one applied ✅" in (
        repaired.stdout
    )
    assert sqlite_project.cdt("-m", "--strict").returncode == 0
    assert sqlite_project.cdt("-lm", "--check").returncode == 0
    assert sqlite_project.harness.effects() == ["edited"]


def test_a_stray_python_file_is_warned_about_and_not_run(sqlite_project: Project) -> None:
    stray = sqlite_project.migrations / "Migration_2024_add_users.py"
    stray.write_text("raise SystemExit('must never be imported')\n\n\nclass Migration:\n    pass\n")
    sqlite_project.add_effect("real")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert f"warning: {stray} is not run" in result.stderr
    assert sqlite_project.harness.effects() == ["real"]


@pytest.mark.parametrize("options", [[], ["--json"], ["--debug"]])
def test_secrets_never_appear_in_any_output(sqlite_project: Project, options: list[str]) -> None:
    sqlite_project.add(
        "import os\n"
        "from clandestino_interfaces import AbstractMigration\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    async def up(self) -> None:\n"
        "        url = os.environ['CLANDESTINO_POSTGRES_CONNECTION_STRING']\n"
        "        raise RuntimeError(f'cannot reach {url} with {os.environ[\"X_TOKEN_COPY\"]}')\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "leaky",
    )
    env = {
        # Chosen outright: a PostgreSQL string beside the SQLite default is otherwise refused.
        "CLANDESTINO_MIGRATION_REPO": "SQLITE",
        "CLANDESTINO_POSTGRES_CONNECTION_STRING": f"postgresql://app:{SECRET}@db:5432/app",
        "CLANDESTINO_ELASTICSEARCH_API_KEY": "c2VjcmV0LWFwaS1rZXk=",
        "X_TOKEN_COPY": "c2VjcmV0LWFwaS1rZXk=",
    }

    result = sqlite_project.cdt("-m", *options, env=env)

    assert result.returncode == 1
    printed = result.stdout + result.stderr
    assert SECRET not in printed and "c2VjcmV0LWFwaS1rZXk=" not in printed
    assert "postgresql://app:***@db:5432/app" in printed
    if "--json" in options:
        assert json.loads(result.stdout.splitlines()[-1])["event"] == "error"
    if "--debug" in options:
        assert "Traceback" in printed


def _on_a_terminal(project: Project, env: dict[str, str]) -> str:
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [CDT, "-m"], cwd=project.root, env={**project.env, **env},
            stdin=terminal, stdout=terminal, stderr=terminal,
        )  # fmt: skip
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    finally:
        os.close(controller)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(sqlite_project: Project) -> None:
    sqlite_project.add_effect("coloured")

    terminal = _on_a_terminal(sqlite_project, {})
    no_color = _on_a_terminal(sqlite_project, {"NO_COLOR": "1"})
    piped = sqlite_project.cdt("-m")

    assert "\033[32mDone: 1 applied" in terminal
    assert "\033[" not in no_color and "Done: 0 applied" in no_color
    assert "\033[" not in piped.stdout + piped.stderr


def test_each_step_shows_its_time_and_a_long_one_that_it_is_still_working(
    sqlite_project: Project,
) -> None:
    quick = sqlite_project.add_effect("quick").stem
    slow = sqlite_project.add(
        "import asyncio\n"
        "from clandestino_interfaces import AbstractMigration\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    async def up(self) -> None:\n"
        "        await asyncio.sleep(2.5)\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "slow",
    ).stem

    text = sqlite_project.cdt("-m")

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.startswith(f"-> running {quick} ✅ 0.") for line in lines)
    assert f"-> running {slow}" in lines
    assert f"   ... still working on {slow} (2 s)" in lines
    finished = next(line for line in lines if line.startswith(f"-> running {slow} ✅"))
    assert 2.5 <= float(finished.split()[-2]) < 10


@pytest.mark.parametrize(("setting", "loop_module"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_migrations_run_on_uvloop_unless_the_setting_asks_for_asyncio(
    sqlite_project: Project, setting: str | None, loop_module: str
) -> None:
    seen = sqlite_project.root / "loop.txt"
    sqlite_project.add(
        "import asyncio\n"
        "from pathlib import Path\n"
        "from clandestino_interfaces import AbstractMigration\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    async def up(self) -> None:\n"
        "        loop = asyncio.get_running_loop()\n"
        f"        Path({str(seen)!r}).write_text(type(loop).__module__)\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "which_loop",
    )

    result = sqlite_project.cdt("-m", env={"CLANDESTINO_EVENT_LOOP": setting} if setting else {})

    assert result.returncode == 0, result.stderr
    assert seen.read_text().split(".")[0] == loop_module


def test_every_module_the_original_ran_runs_under_its_own_name_in_its_order(
    sqlite_project: Project,
) -> None:
    # Names the original's -cm wrote from a name with a dash, and others its users kept: any
    # module name starting with "migration", as pkgutil.iter_modules found them.
    stems = [
        "migration_2024_01_01_00_00_01_add-users",
        "migration-2024-01-01-add-orders",
        "migration_2024_01_01_00_00_02_add users",
        "migrationz",
    ]
    for tag, stem in enumerate(stems):
        path = sqlite_project.migrations / f"{stem}.py"
        path.write_text(sqlite_project.harness.effect_migration(f"t{tag}"))
    helper = sqlite_project.migrations / "helpers.py"
    helper.write_text("X = 1\n")

    applied = sqlite_project.cdt("-m")
    check = sqlite_project.cdt("-lm", "--check")
    listing = sqlite_project.cdt("-lm")
    rolled = sqlite_project.cdt("-rm", "-y")

    assert applied.returncode == 0, applied.stderr
    assert "warning" not in applied.stderr, applied.stderr
    order = sorted(stems)
    assert [f"-> running {stem} ✅" for stem in order] == [
        line.rsplit(" ", 2)[0] for line in applied.stdout.splitlines() if "-> running" in line
    ]
    assert check.returncode == 0, check.stderr
    assert "warning" not in check.stderr and "helpers" not in check.stdout + check.stderr
    assert all(stem in listing.stdout for stem in stems)
    assert rolled.returncode == 0, rolled.stderr
    assert f"-> rolling back {order[-1]} ✅" in rolled.stdout
    assert sqlite_project.harness.records() == order[:-1]


def test_a_helper_module_beside_the_migrations_is_importable_by_name(
    sqlite_project: Project,
) -> None:
    (sqlite_project.migrations / "helpers.py").write_text("TAG = 'from-helper'\n")
    (sqlite_project.migrations / "sql_helpers.py").write_text("TABLE = 'effects'\n")
    sqlite_project.add(
        "import helpers\n"
        "from clandestino_interfaces import AbstractMigration\n"
        "from clandestino_sqlite.infra import SQLiteInfra\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    infra = SQLiteInfra()\n\n"
        "    async def up(self) -> None:\n"
        "        from sql_helpers import TABLE  # imported while up() runs\n"
        "        async with self.infra.get_cursor() as cursor:\n"
        "            cursor.execute(f'CREATE TABLE IF NOT EXISTS {TABLE} (tag TEXT)')\n"
        "            cursor.execute(f'INSERT INTO {TABLE} VALUES (?)', [helpers.TAG])\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "uses_helpers",
    )

    result = sqlite_project.cdt("-m")
    listed = sqlite_project.cdt("-lm")

    assert result.returncode == 0, result.stderr
    assert sqlite_project.harness.effects() == ["from-helper"]
    for run in (result, listed):
        assert "helpers" not in run.stderr and "warning" not in run.stderr, run.stderr


_RAISING = (
    "import asyncio\n"
    "import sys\n"
    "from pathlib import Path\n"
    "from clandestino_interfaces import AbstractMigration\n"
    "from clandestino_sqlite.infra import SQLiteInfra\n\n\n"
    "class Migration(AbstractMigration):\n"
    "    infra = SQLiteInfra()\n\n"
    "    async def up(self) -> None:\n"
    "        async with self.infra.get_cursor() as cursor:\n"
    "            cursor.execute('CREATE TABLE IF NOT EXISTS effects (tag TEXT)')\n"
    "            cursor.execute(\"INSERT INTO effects VALUES ('raiser')\")\n"
    "        {body}\n\n"
    "    async def down(self) -> None:\n"
    "        pass\n"
)


@pytest.mark.parametrize(
    "statement",
    [
        "raise RuntimeError('plain')",  # down() undoes nothing: the step's rollback must
        "raise SystemExit(0)",
        "sys.exit(3)",
        "raise KeyboardInterrupt",
        "raise GeneratorExit",
        "raise asyncio.CancelledError()",
    ],
)
def test_a_migration_raising_a_base_exception_is_a_failed_migration(
    sqlite_project: Project, statement: str
) -> None:
    sqlite_project.add_effect("before")
    raiser = sqlite_project.add(_RAISING.replace("{body}", statement), "raiser")
    later = sqlite_project.add_effect("later")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and raiser.stem in errors[0], result.stderr
    assert f"-> running {raiser.stem} ⚠️" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert sqlite_project.harness.effects() == ["before"]
    assert (
        sqlite_project.harness.records()
        == [p.stem for p in sorted(sqlite_project.migrations.glob("*.py"))][:1]
    )
    assert later.stem not in result.stdout


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_real_signal_stays_an_interruption_whatever_the_migration_raises(
    sqlite_project: Project, signal_number: int, code: int
) -> None:
    started = sqlite_project.root / "started"
    body = (
        "try:\n"
        f"            Path({str(started)!r}).touch()\n"
        "            await asyncio.sleep(60)\n"
        "        except BaseException:\n"
        "            sys.exit(0)  # what some code makes of being stopped"
    )
    raiser = sqlite_project.add(_RAISING.replace("{body}", body), "raiser")
    run = sqlite_project.start("-m")
    deadline = time.monotonic() + 60
    while not started.exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)

    run.send_signal(signal_number)
    out, err = run.communicate(timeout=60)

    assert run.returncode == code, (out, err)
    assert f"-> running {raiser.stem} ⚠️" in out
    assert sqlite_project.harness.records() == []
    assert sqlite_project.harness.effects() == []


_OWN_CONNECTION = (
    "import os\n"
    "import sqlite3\n"
    "from clandestino_interfaces import AbstractMigration\n\n\n"
    "class Migration(AbstractMigration):\n"
    "    infra = None\n\n"
    "    async def up(self) -> None:\n"
    "        connection = sqlite3.connect(os.environ['CLANDESTINO_SQLITE_DB_PATH'])\n"
    "        connection.execute('CREATE TABLE IF NOT EXISTS effects (tag TEXT)')\n"
    "        connection.execute(\"INSERT INTO effects VALUES ('own')\")\n"
    "        connection.commit()\n"
    "        connection.close()\n\n"
    "    async def down(self) -> None:\n"
    "        pass\n"
)

_COMMITS_ITSELF = (
    "from clandestino_interfaces import AbstractMigration\n"
    "from clandestino_sqlite.infra import SQLiteInfra\n\n\n"
    "class Migration(AbstractMigration):\n"
    "    infra = SQLiteInfra()\n\n"
    "    async def up(self) -> None:\n"
    "        async with self.infra.get_cursor() as cursor:\n"
    "            cursor.execute('CREATE TABLE IF NOT EXISTS effects (tag TEXT)')\n"
    "            cursor.execute(\"INSERT INTO effects VALUES ('committed')\")\n"
    "            cursor.connection.commit()\n"
    "            cursor.execute(\"INSERT INTO effects VALUES ('after')\")\n"
    "        {after}\n\n"
    "    async def down(self) -> None:\n"
    "        pass\n"
)


def test_sqlite_migrations_with_their_own_connection_run_as_in_the_original(
    sqlite_project: Project,
) -> None:
    own = sqlite_project.add(_OWN_CONNECTION, "own").stem
    through_infra = sqlite_project.add_effect("infra").stem
    again = sqlite_project.add(_OWN_CONNECTION, "own_again").stem

    began = time.monotonic()
    result = sqlite_project.cdt("-m")
    took = time.monotonic() - began

    assert result.returncode == 0, result.stderr
    assert took < 3, took  # no wait for a lock the run itself holds
    assert sqlite_project.harness.effects() == ["own", "infra", "own"]
    assert sqlite_project.harness.records() == [own, through_infra, again]
    assert sqlite_project.cdt("-lm", "--check").returncode == 0


def test_a_sqlite_migration_committing_inside_the_cursor_block_works_as_in_the_original(
    sqlite_project: Project,
) -> None:
    committing = sqlite_project.add(_COMMITS_ITSELF.replace("{after}", "pass"), "commits").stem

    result = sqlite_project.cdt("-m")
    again = sqlite_project.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert sqlite_project.harness.effects() == ["committed", "after"]
    assert sqlite_project.harness.records() == [committing]
    assert again.returncode == 0 and f"-> running {committing} ⏭️" in again.stdout


def test_a_sqlite_migration_failing_after_its_own_commit_keeps_it_and_is_not_recorded(
    sqlite_project: Project,
) -> None:
    sqlite_project.add(_COMMITS_ITSELF.replace("{after}", "raise RuntimeError('late')"), "late")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 1, result.stderr
    assert "RuntimeError: late" in result.stderr and "hint" not in result.stderr.lower()
    # What it committed stays, as in the original; what followed the commit is undone.
    assert sqlite_project.harness.effects() == ["committed"]
    assert sqlite_project.harness.records() == []
