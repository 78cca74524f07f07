"""The Python API: `await migrate()` and friends, at application start-up and called repeatedly."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

import clandestino
from clandestino import (
    ClandestinoError,
    MigrationFailed,
    MigrationFileError,
    create,
    migrate,
    migrate_database,
    rollback,
    status,
)
from clandestino.events import Event, MigrationSucceeded
from tests.conftest import Project, step_lines


@pytest.fixture
def api_project(sqlite_project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The API reads the process environment: give it the project's, and its folder."""
    for name in [n for n in os.environ if n.startswith("CLANDESTINO_")]:
        monkeypatch.delenv(name)
    for name, value in sqlite_project.harness.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(sqlite_project.root)
    return sqlite_project


def test_migrate_at_app_start_up_inside_a_running_loop(api_project: Project) -> None:
    api_project.add_effect("boot")
    events: list[Event] = []

    async def app() -> list[str]:
        heartbeat = asyncio.create_task(asyncio.sleep(3600))
        report = await migrate(on_event=events.append)
        heartbeat.cancel()
        return report.done

    done = asyncio.run(app())

    assert done == [f.stem for f in api_project.migrations.glob("migration_*.py")]
    assert api_project.harness.effects() == ["boot"]
    assert any(isinstance(event, MigrationSucceeded) for event in events)


def test_migrate_can_be_called_twice_in_one_process(api_project: Project) -> None:
    api_project.add_effect("first")

    first = asyncio.run(migrate())
    api_project.add_effect("second")
    second = asyncio.run(migrate())

    assert len(first.done) == 1 and len(second.done) == 1 and len(second.skipped) == 1
    assert api_project.harness.effects() == ["first", "second"]


def test_the_api_prints_nothing(api_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    name = api_project.add_effect("quiet").stem

    report = asyncio.run(migrate())

    assert capsys.readouterr() == ("", "")
    # Quiet because it ran without printing, not because it did nothing.
    assert report.done == [name]
    assert api_project.harness.effects() == ["quiet"]


def test_migrate_database_prints_the_originals_lines_and_migrate_stays_quiet(
    api_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    first = api_project.add_effect("printed").stem
    asyncio.run(migrate_database())
    printed = capsys.readouterr()
    second = api_project.add_effect("quiet").stem
    asyncio.run(migrate())
    quiet = capsys.readouterr()
    api_project.add_effect("broken", fail=True)
    with pytest.raises(MigrationFailed):
        asyncio.run(migrate_database())
    failed = capsys.readouterr()

    lines = step_lines(printed.out)
    assert lines == [f"-> running {first} ✅"], printed
    assert "Migration repository mode is: " in printed.out
    assert quiet == ("", "")
    assert step_lines(failed.out)[:2] == [f"-> running {first} ⏭️", f"-> running {second} ⏭️"]
    assert step_lines(failed.out)[2].endswith("⚠️")
    assert api_project.harness.effects() == ["printed", "quiet"]


def test_errors_are_raised_typed_not_exited(api_project: Project) -> None:
    api_project.add_effect("bad", fail=True)
    with pytest.raises(MigrationFailed) as failed:
        asyncio.run(migrate())
    assert failed.value.exit_code == 1 and "boom in bad" in failed.value.message

    api_project.add("this is not python\n", "worse")
    with pytest.raises(MigrationFileError) as broken:
        asyncio.run(migrate())
    assert isinstance(broken.value, ClandestinoError) and broken.value.exit_code == 2


def test_arguments_override_the_environment(api_project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    database = tmp_path / "chosen.db"
    asyncio.run(create("made_by_api", "sqlite", migrations_dir=folder))

    report = asyncio.run(migrate(migrations_dir=folder, backend="SQLITE", url=str(database)))

    assert len(report.done) == 1
    assert sqlite3.connect(database).execute("SELECT count(*) FROM clandestino").fetchone() == (1,)
    assert not api_project.harness.path.exists()


def test_status_and_rollback(api_project: Project) -> None:
    names = [api_project.add_effect(tag).stem for tag in ("a", "b", "c")]
    asyncio.run(migrate())
    asked: list[list[str]] = []

    def refuse(targets: list[str]) -> bool:
        asked.append(targets)
        return False

    cancelled = asyncio.run(rollback(2, confirm=refuse))
    undone = asyncio.run(rollback(2))
    states = asyncio.run(status())

    assert cancelled.cancelled and asked == [[names[2], names[1]]]
    assert undone.done == [names[2], names[1]]
    assert [(s.name, s.applied) for s in states] == [
        (names[0], True),
        (names[1], False),
        (names[2], False),
    ]
    assert api_project.harness.effects() == ["a"]


def test_public_names_are_sorted_and_importable() -> None:
    assert clandestino.__all__ == sorted(clandestino.__all__)
    for name in clandestino.__all__:
        assert getattr(clandestino, name) is not None
    from clandestino import api, errors, store

    for module in (api, errors, store):
        assert module.__all__ == sorted(module.__all__)


def test_helper_modules_are_on_the_path_only_for_the_run_and_per_folder(
    api_project: Project, tmp_path: Path
) -> None:
    source = (
        "import helpers\n"
        "from pathlib import Path\n"
        "from clandestino_interfaces import AbstractMigration\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    async def up(self) -> None:\n"
        "        Path(helpers.OUT).write_text(helpers.WHO)\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n"
    )
    out = tmp_path / "who.txt"
    other = tmp_path / "other"
    other.mkdir()
    for folder, who in ((api_project.migrations, "first"), (other, "second")):
        (folder / "helpers.py").write_text(f"OUT = {str(out)!r}\nWHO = {who!r}\n")
        (folder / "migration_2024_01_01_00_00_01_helped.py").write_text(source)
    path_before = list(os.sys.path)

    asyncio.run(migrate())
    first = out.read_text()
    asyncio.run(migrate(migrations_dir=other, url=str(tmp_path / "other.db")))

    assert (first, out.read_text()) == ("first", "second")
    assert os.sys.path == path_before
    assert "helpers" not in os.sys.modules
