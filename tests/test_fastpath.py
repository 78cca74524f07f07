"""The no-op run without an event loop: on SQLite, `cdt -m` with nothing to do and `cdt -lm` read
the records in one blocking call, and must say exactly what the async run says. (PostgreSQL reads
them with asyncpg, its one client, on every run.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


# SQLite's own store never leaves a marker (each step commits with its record), so the blocking
# read meets one only from a backend that keeps markers and offers that read: this plug-in is
# SQLite's backend with the markers of interrupted steps kept beside the database, read by both
# its blocking snapshot and its async store.
_MARKING_PLUGIN = textwrap.dedent(
    """\
    import dataclasses
    import sqlite3

    from clandestino.backends import Backend
    from clandestino.store import Interruption
    from clandestino_sqlite import backend as sqlite


    def _marked(records, settings):
        path = sqlite.database_path(settings).with_suffix(".markers")
        found = {}
        if path.exists():
            connection = sqlite3.connect(path)
            try:
                rows = connection.execute("SELECT name, direction, owner FROM markers")
                found = {name: Interruption(way, owner) for name, way, owner in rows}
            finally:
                connection.close()
        return [dataclasses.replace(r, interrupted=found.get(r.name)) for r in records]


    def _read_snapshot(settings):
        snapshot = sqlite.backend.read_snapshot(settings)
        return snapshot and dataclasses.replace(
            snapshot, records=_marked(snapshot.records, settings)
        )


    def _create_store(settings, read_only):
        store = sqlite.backend.create_store(settings, read_only)
        applied = store.applied

        async def marked_applied():
            return _marked(await applied(), settings)

        store.applied = marked_applied
        return store


    backend = Backend(
        name="marking",
        url_setting="CLANDESTINO_SQLITE_DB_PATH",
        template_module="clandestino_sqlite.ref",
        create_store=_create_store,
        read_snapshot=_read_snapshot,
    )
    """
)


def test_a_no_op_run_with_an_interrupted_step_is_not_settled_by_the_blocking_read(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = sqlite_project
    site = tmp_path / "site"
    site.mkdir()
    (site / "marking_backend.py").write_text(_MARKING_PLUGIN)
    info = site / "marking_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: marking-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[clandestino.backends]\nmarking = marking_backend:backend\n"
    )
    project.env |= {"PYTHONPATH": str(site), "CLANDESTINO_MIGRATION_REPO": "marking"}
    names = [project.add_effect(tag).stem for tag in ("kept", "undone")]
    assert project.cdt("-m").returncode == 0
    code, _, loaded = _cdt_reporting_modules(project, "-m")
    assert (code, loaded) == (0, []), "the plug-in's no-op run is not read without a loop"
    markers = sqlite3.connect(project.harness.path.with_suffix(".markers"))
    with markers:
        markers.execute("CREATE TABLE markers (name TEXT, direction TEXT, owner TEXT)")
        markers.execute("INSERT INTO markers VALUES (?, 'down', 'host/4242')", [names[1]])
    markers.close()

    refused = project.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "5"})
    gate, _, gate_loaded = _cdt_reporting_modules(project, "-lm", "--check")

    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert f"error: {names[1]}: down() by host/4242 never finished" in refused.stderr
    assert "cdt --repair" in refused.stderr
    assert "Done:" not in refused.stdout
    assert (gate, gate_loaded) == (1, [])
    assert project.harness.records() == names
