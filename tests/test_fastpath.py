"""The no-op run without an event loop: on SQLite, `cdt -m` with nothing to do and `cdt -lm` read
the records in one blocking call, and must say exactly what the async run says. (PostgreSQL reads
them with asyncpg, its one client, on every run.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from clandestino.backends import read_snapshot, resolve_store
from clandestino.config import load_settings
from clandestino.store import AppliedMigration, opened
from tests.conftest import Project, step_lines

SKIPPED = "⏭️"

# `cdt` in-process, reporting afterwards which of the modules a no-op run avoids were loaded.
_CDT_REPORTING_MODULES = """\
import sys
from clandestino.cli import main
code = main(sys.argv[1:])
loaded = [name for name in ("asyncio", "asyncpg") if name in sys.modules]
print("loaded:", ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def _cdt_reporting_modules(project: Project, *args: str) -> tuple[int, str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _CDT_REPORTING_MODULES, *args],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("loaded:"), result.stderr
    loaded = last.removeprefix("loaded:").strip()
    return result.returncode, result.stdout, loaded.split(",") if loaded else []


def _store_records(project: Project) -> tuple[str, list[AppliedMigration]]:
    settings = load_settings(project.root, environ=project.env)

    async def read() -> tuple[str, list[AppliedMigration]]:
        store = resolve_store(settings, [], read_only=True)
        async with opened(store):
            return store.description, await store.applied()

    return asyncio.run(read())


def test_a_no_op_run_and_a_listing_start_no_event_loop(snapshot_project: Project) -> None:
    project = snapshot_project
    names = [project.add_effect(tag).stem for tag in ("a", "b", "c")]
    assert project.cdt("-m").returncode == 0

    code, out, loaded = _cdt_reporting_modules(project, "-m")

    assert (code, loaded) == (0, [])
    assert step_lines(out) == [f"-> running {name} {SKIPPED}" for name in names]
    assert "Done: 0 applied, 3 skipped, 0 failed" in out
    code, out, loaded = _cdt_reporting_modules(project, "-lm")
    assert (code, loaded) == (0, [])
    assert all(name in out for name in names)


def test_pending_work_is_run_by_the_async_engine_with_one_header(
    snapshot_project: Project,
) -> None:
    project = snapshot_project
    first = project.add_effect("first").stem
    assert project.cdt("-m").returncode == 0
    second = project.add_effect("second").stem

    code, out, loaded = _cdt_reporting_modules(project, "-m")

    assert code == 0 and "asyncio" in loaded
    assert project.harness.effects() == ["first", "second"]
    assert project.harness.records() == [first, second]
    # What the blocking read saw before it found work to do is not printed twice.
    assert out.count("Migration repository mode is:") == 1
    assert out.count("Running migrations:") == 1


def test_the_blocking_read_gives_the_records_the_store_gives(snapshot_project: Project) -> None:
    project = snapshot_project
    harness = project.harness
    original = [project.add_effect(tag).stem for tag in ("old1", "old2")]
    harness.write_original_control(original)
    settings = load_settings(project.root, environ=project.env)

    before = read_snapshot(settings)
    assert before is not None
    assert [record.name for record in before.records] == original
    assert all(record.checksum is None for record in before.records)
    assert (before.description, before.records) == _store_records(project)

    ours = project.add_effect("new").stem
    assert project.cdt("-m").returncode == 0
    after = read_snapshot(settings)

    assert after is not None
    assert (after.description, after.records) == _store_records(project)
    new = after.records[-1]
    assert new.name == ours and new.checksum and new.duration_ms is not None
    assert new.applied_at is not None
    assert abs(new.applied_at - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize("check", [True, False], ids=["check", "plain"])
def test_a_listing_from_the_blocking_read_keeps_the_ci_gate(
    snapshot_project: Project, check: bool
) -> None:
    project = snapshot_project
    project.add_effect("applied")
    assert project.cdt("-m").returncode == 0
    project.add_effect("pending")

    code, _, loaded = _cdt_reporting_modules(project, "-lm", *(["--check"] if check else []))

    assert (code, loaded) == (1 if check else 0, [])


def test_a_dry_run_imports_its_migrations_inside_the_event_loop(snapshot_project: Project) -> None:
    project = snapshot_project
    # A module that needs a running loop when it is imported, as some async libraries do.
    name = project.add(
        "import asyncio\n"
        "from clandestino_interfaces import AbstractMigration\n\n"
        "LOOP = asyncio.get_running_loop()\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    async def up(self) -> None:\n"
        "        pass\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "needs_a_loop",
    ).stem

    code, out, loaded = _cdt_reporting_modules(project, "-m", "--dry-run")

    assert code == 0 and "asyncio" in loaded
    assert f"-> would run {name}" in step_lines(out)
    assert project.harness.records() == []
