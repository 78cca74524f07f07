"""The `cdt` command on the SQLite default: options, lines, exit codes, settings and files."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import CDT, Project, clean_environ, step_lines

ORIGINAL_HELP = [
    " Clandestino is a database migration tool",
    "  cdt [-h|-m|-lm|-rm|-cm] [params]",
    "    -h: Display help",
    "    -m: Migrate database",
    "    -lm: List migrations",
    "    -rm: Rollback last migration",
    "    -cm: Create database migration - params [name type]",
]
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
DRIVERS = {"sqlite3", "_sqlite3", "asyncpg", "pymongo", "motor", "elasticsearch", "psycopg"}


@pytest.mark.parametrize("args", [["-h"], ["--help"], []])
def test_help_prints_the_original_lines_and_the_mode(
    sqlite_project: Project, args: list[str]
) -> None:
    result = sqlite_project.cdt(*args)

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == ORIGINAL_HELP[0]
    assert lines[1] == " Migration repository mode is: SQLITE (default)"
    for line in ORIGINAL_HELP:
        assert line in lines
    for option in ("--dry-run", "--to NAME", "--steps N", "--yes", "--dir PATH", "--json"):
        assert option in result.stdout


def test_help_names_the_configured_or_local_repository(sqlite_project: Project) -> None:
    configured = sqlite_project.cdt("-h", env={"CLANDESTINO_MIGRATION_REPO": "postgres"})
    assert " Migration repository mode is: POSTGRES" in configured.stdout.splitlines()

    (sqlite_project.migrations / "repository.py").write_text("raise SystemExit('never imported')\n")
    local = sqlite_project.cdt("-h")
    assert local.returncode == 0
    assert "Migration repository mode is: LOCAL (" in local.stdout


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_version_of_the_project(sqlite_project: Project, flag: str) -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]

    result = sqlite_project.cdt(flag)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"clandestino {declared}\n"


def test_version_with_json_is_one_event(sqlite_project: Project) -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]

    result = sqlite_project.cdt("--version", "--json")

    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"event": "version", "version": declared}
    ]


def test_version_is_a_command_of_its_own(sqlite_project: Project) -> None:
    result = sqlite_project.cdt("-m", "--version")

    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_python_dash_m_clandestino_is_cdt(sqlite_project: Project) -> None:
    path = sqlite_project.add_effect("first")

    def module(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clandestino", *args],
            cwd=sqlite_project.root,
            env=sqlite_project.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert module("-h").stdout == sqlite_project.cdt("-h").stdout
    migrated = module("-m")
    assert migrated.returncode == 0, migrated.stderr
    assert sqlite_project.harness.records() == [path.stem]
    assert module("--bogus").returncode == 2


@pytest.mark.parametrize(
    "code",
    [
        "import clandestino",
        "from clandestino.cli import main; main(['-h'])",
        "from clandestino import migrate, ClandestinoError",
    ],
)
def test_import_and_help_load_no_database_driver(tmp_path: Path, code: str) -> None:
    probe = f"{code}\nimport sys\nprint(sorted(set(sys.modules) & set({sorted(DRIVERS)!r})))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=clean_environ(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["-m", "extra"], "unrecognized arguments: extra"),
        (["-m", "-lm"], "not allowed with argument"),
        (["--dry-run"], "--dry-run goes with -m"),
        (["-lm", "--to", "x"], "--to goes with -m or -rm"),
        (["-rm", "0"], "at least 1"),
        (["-rm", "2", "--steps", "3"], "give the count once"),
        (["-cm"], "expected at least one argument"),
        (["-cm", "a", "sqlite", "extra"], "-cm takes a name and an optional type"),
        (["--dir", "elsewhere"], "no command given"),
        (["-y"], "no command given"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    sqlite_project: Project, args: list[str], message: str
) -> None:
    result = sqlite_project.cdt(*args)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not sqlite_project.harness.path.exists()


@pytest.mark.parametrize("kind", [None, "sqlite", "SQLite"])
def test_create_writes_the_template_of_the_type(tmp_path: Path, kind: str | None) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    args = ["-cm", "add_users"] + ([kind] if kind else [])

    result = subprocess.run(
        [CDT, *args], cwd=root, env=clean_environ(), capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    [created] = list((root / "migrations").iterdir())
    assert created.name.startswith("migration_") and created.name.endswith("_add_users.py")
    assert result.stdout.splitlines() == [
        f"Path not exists: {root / 'migrations'}, creating!",
        f"Creating {kind or 'empty'} migration: {created.name} ✅",
    ]
    expected = "SQLiteInfra()" if kind else "infra = None"
    assert expected in created.read_text()


def test_create_uses_ref_py_as_the_original_did(sqlite_project: Project) -> None:
    (sqlite_project.migrations / "ref.py").write_text("# our own template\n")

    result = sqlite_project.cdt("-cm", "custom", "sqlite")

    assert result.returncode == 0, result.stderr
    [created] = sqlite_project.migrations.glob("migration_*_custom.py")
    assert created.read_text() == "# our own template\n"


@pytest.mark.parametrize("name", ["../escape", "a/b", "with space", "dash-name", "é", ""])
def test_create_refuses_a_bad_name_and_writes_nothing(tmp_path: Path, name: str) -> None:
    root = tmp_path / "fresh"
    root.mkdir()

    result = subprocess.run(
        [CDT, "-cm", name], cwd=root, env=clean_environ(), capture_output=True, text=True
    )

    assert result.returncode == 2
    assert "is not allowed" in result.stderr
    assert list(tmp_path.rglob("*")) == [root]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nosuchdb", "names no installed backend"),
    ],
)
def test_create_with_an_unusable_type_says_what_to_do(
    sqlite_project: Project, kind: str, message: str
) -> None:
    result = sqlite_project.cdt("-cm", "thing", kind)

    assert result.returncode == 2
    assert message in result.stderr
    assert list(sqlite_project.migrations.iterdir()) == []


def test_files_created_in_the_same_second_sort_in_creation_order(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from clandestino.scaffold import create_migration_file

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    folder = tmp_path / "migrations"
    names = ["zeta", "alpha", "mid"]
    created = [create_migration_file(folder, name, None, now=now).path.name for name in names]

    assert sorted(created) == created
    assert created[0] == "migration_2026_01_02_03_04_05_zeta.py"


def test_rollback_without_a_terminal_and_without_yes_refuses(sqlite_project: Project) -> None:
    sqlite_project.add_effect("kept")
    assert sqlite_project.cdt("-m").returncode == 0

    result = sqlite_project.cdt("-rm")

    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert sqlite_project.harness.effects() == ["kept"]


@pytest.mark.parametrize(("answer", "undone"), [("Y", True), ("n", False), ("", False)])
def test_rollback_asks_on_a_terminal(sqlite_project: Project, answer: str, undone: bool) -> None:
    name = sqlite_project.add_effect("asked").stem
    assert sqlite_project.cdt("-m").returncode == 0
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [CDT, "-rm"],
            cwd=sqlite_project.root,
            env=sqlite_project.env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, f"{answer}\n".encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)

    assert process.returncode == 0, err
    assert f"You really want to roll back this migration '{name}'? y/N: " in out
    assert sqlite_project.harness.effects() == ([] if undone else ["asked"])
    assert ("Roll back cancelled: nothing changed" in out) is not undone


def test_rollback_with_nothing_applied_does_nothing(sqlite_project: Project) -> None:
    sqlite_project.add_effect("never")

    result = sqlite_project.cdt("-rm", "-y")

    assert result.returncode == 0, result.stderr
    assert "Done: 0 rolled back, 0 failed" in result.stdout


def test_rollback_of_a_migration_whose_file_is_gone_is_refused(sqlite_project: Project) -> None:
    path = sqlite_project.add_effect("vanishing")
    assert sqlite_project.cdt("-m").returncode == 0
    path.unlink()

    result = sqlite_project.cdt("-rm", "-y")

    assert result.returncode == 2
    assert "its file is not in the migrations folder" in result.stderr
    assert sqlite_project.harness.records() == [path.stem]


def test_a_failing_down_keeps_the_record(sqlite_project: Project) -> None:
    source = sqlite_project.harness.effect_migration("stubborn").replace(
        '        async with self.infra.get_cursor() as cursor:\n            cursor.execute("DELETE',
        '        raise ValueError("cannot undo")\n'
        "        async with self.infra.get_cursor() as cursor:\n"
        '            cursor.execute("DELETE',
    )
    path = sqlite_project.add(source, "stubborn")
    assert sqlite_project.cdt("-m").returncode == 0

    result = sqlite_project.cdt("-rm", "-y")

    assert result.returncode == 1
    assert f"-> rolling back {path.stem} ⚠️" in step_lines(result.stdout)
    assert "failed in down(): ValueError: cannot undo" in result.stderr
    assert sqlite_project.harness.records() == [path.stem]
    assert sqlite_project.harness.effects() == ["stubborn"]


def test_json_prints_one_object_per_event(sqlite_project: Project) -> None:
    name = sqlite_project.add_effect("j").stem

    result = sqlite_project.cdt("-m", "--json")

    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds == [
        "repository_chosen",
        "run_started",
        "migration_started",
        "migration_succeeded",
        "run_finished",
    ]
    assert events[3]["name"] == name and events[3]["seconds"] >= 0
    listing = sqlite_project.cdt("-lm", "--json")
    states = [json.loads(line) for line in listing.stdout.splitlines()]
    assert states[-1] == {
        "event": "migration_state",
        "name": name,
        "applied": True,
        "applied_at": states[-1]["applied_at"],
        "changed": False,
        "file_missing": False,
        "interrupted": None,
    }


def test_json_error_is_an_object_too(sqlite_project: Project) -> None:
    result = sqlite_project.cdt("-m", "--json", env={"CLANDESTINO_MIGRATION_REPO": "nope"})

    assert result.returncode == 2
    error = json.loads(result.stdout.splitlines()[-1])
    assert error["event"] == "error" and error["exit_code"] == 2


def test_debug_shows_the_traceback_and_only_then(sqlite_project: Project) -> None:
    sqlite_project.add(sqlite_project.harness.effect_migration("x", fail=True), "x")

    plain = sqlite_project.cdt("-m")
    debug = sqlite_project.cdt("-m", "--debug")

    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr and "RuntimeError: boom in x" in debug.stderr


def test_an_unusable_database_file_is_exit_3(sqlite_project: Project) -> None:
    # A path in a missing folder is a configuration error (exit 2): see test_bad_input.py.
    sqlite_project.add_effect("x")
    bad = sqlite_project.root / "dbdir"
    bad.mkdir()

    result = sqlite_project.cdt("-m", env={"CLANDESTINO_SQLITE_DB_PATH": str(bad)})

    assert result.returncode == 3
    assert result.stderr.startswith("error: SQLite database") and "Traceback" not in result.stderr


def test_lock_timeout_names_the_wait_and_exits_3(sqlite_project: Project) -> None:
    sqlite_project.add_effect("waits")
    holder = sqlite3.connect(sqlite_project.harness.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = sqlite_project.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "1"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert result.returncode == 3
    assert "waiting for the lock held by another process writing to" in result.stdout
    assert "locked for more than 1 s" in result.stderr
    assert sqlite_project.harness.effects() == []
    assert sqlite_project.cdt("-m").returncode == 0
    assert sqlite_project.harness.effects() == ["waits"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CLANDESTINO_MIGRATION_REPO": "oracle"},
            "CLANDESTINO_MIGRATION_REPO=oracle names no installed backend",
        ),
        ({"CLANDESTINO_MIGRATION_REPO": "Mongo"}, "CLANDESTINO_MONGO_CONNECTION_STRING is not set"),
        (
            {"CLANDESTINO_MIGRATION_REPO": "postgres"},
            "CLANDESTINO_POSTGRES_CONNECTION_STRING is not set",
        ),
        (
            {
                "CLANDESTINO_MIGRATION_REPO": "ELASTICSEARCH",
                "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": "http://127.0.0.1:9",
                "CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS": "maybe",
            },
            "CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS='maybe' is not true or false",
        ),
        ({"CLANDESTINO_CONNECT_TIMEOUT": "0"}, "is not a number of seconds"),
        ({"CLANDESTINO_LOCK_LEASE": "x"}, "is not a number of seconds"),
        ({"CLANDESTINO_CONTROL_TABLE": "x; DROP TABLE y"}, "is not a plain identifier"),
        ({"CLANDESTINO_LOCK_TIMEOUT": "soon"}, "is not a number of seconds"),
        ({"CLANDESTINO_LOCK_TIMEOUT": "-1"}, "is not a number of seconds"),
        ({"CLANDESTINO_MIGRATIONS_DIR": "nowhere"}, "does not exist"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(
    sqlite_project: Project, env: dict[str, str], message: str
) -> None:
    sqlite_project.add_effect("x")

    result = sqlite_project.cdt("-m", env=env)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not sqlite_project.harness.path.exists()


@pytest.mark.parametrize(
    ("repository", "driver", "setting", "url"),
    [
        ("POSTGRES", "asyncpg", "POSTGRES", "postgresql://u@127.0.0.1:9/db"),
        ("MONGO", "pymongo", "MONGO", "mongodb://127.0.0.1:9/db"),
        ("ELASTICSEARCH", "elasticsearch", "ELASTICSEARCH", "http://127.0.0.1:9"),
    ],
)
def test_a_backend_whose_driver_is_missing_names_the_extra(
    sqlite_project: Project, tmp_path: Path, repository: str, driver: str, setting: str, url: str
) -> None:
    shadow = tmp_path / "without-driver" / driver
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f'raise ImportError("No module named {driver}")\n')
    env = {
        "PYTHONPATH": str(shadow.parent),
        "CLANDESTINO_MIGRATION_REPO": repository,
        f"CLANDESTINO_{setting}_CONNECTION_STRING": url,
    }
    sqlite_project.add_effect("x")

    result = sqlite_project.cdt("-m", env=env)

    assert result.returncode == 2
    assert f"pip install 'clandestino[{repository.lower()}]'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_dotenv_is_read_and_the_environment_wins(sqlite_project: Project) -> None:
    sqlite_project.add_effect("x")
    from_file = sqlite_project.root / "from-dotenv.db"
    (sqlite_project.root / ".env").write_text(
        f"CLANDESTINO_SQLITE_DB_PATH={from_file}\nCLANDESTINO_CONTROL_TABLE=deploys\n"
    )

    overridden = sqlite_project.cdt("-m")
    assert overridden.returncode == 0, overridden.stderr
    assert not from_file.exists()

    env = {k: v for k, v in sqlite_project.env.items() if k != "CLANDESTINO_SQLITE_DB_PATH"}
    read = subprocess.run(
        [CDT, "-m"], cwd=sqlite_project.root, env=env, capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    tables = sqlite3.connect(from_file).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("deploys",) in tables


def test_a_dotenv_that_does_not_parse_is_named(sqlite_project: Project) -> None:
    (sqlite_project.root / ".env").write_text("GOOD=1\nthis line is not a setting\n")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 2
    assert ".env, line 2: cannot parse" in result.stderr


def test_dir_option_and_setting_choose_the_folder(sqlite_project: Project) -> None:
    other = sqlite_project.root / "db" / "changes"
    other.mkdir(parents=True)
    moved = sqlite_project.add_effect("moved")
    moved.rename(other / moved.name)

    by_option = sqlite_project.cdt("-m", "--dir", "db/changes")
    assert by_option.returncode == 0, by_option.stderr
    assert sqlite_project.harness.effects() == ["moved"]
    by_setting = sqlite_project.cdt("-lm", env={"CLANDESTINO_MIGRATIONS_DIR": "db/changes"})
    assert f"{moved.stem}  applied" in by_setting.stdout


def test_a_file_generated_by_the_original_runs_in_the_records_transaction(
    sqlite_project: Project,
) -> None:
    original = textwrap.dedent(
        """\
        from clandestino_interfaces import AbstractMigration

        from clandestino_sqlite.infra import SQLiteInfra


        class Migration(AbstractMigration):

            infra = SQLiteInfra()

            async def up(self) -> None:
                \"\"\"Do modifications in database\"\"\"
                async with self.infra.get_cursor() as cursor:
                    cursor.execute("CREATE TABLE things (name TEXT)")
                    cursor.execute("INSERT INTO things (name) VALUES (?)", ["one"])
                    cursor.execute("SELECT count(*) FROM things")
                    assert cursor.fetchone() == (1,)
                    cursor.executescript(
                        "INSERT INTO things VALUES ('two'); INSERT INTO things VALUES ('3');"
                    )

            async def down(self) -> None:
                \"\"\"Undo modifications in database\"\"\"
                async with self.infra.get_cursor() as cursor:
                    cursor.execute("DROP TABLE things")
        """
    )
    sqlite_project.add(original, "original")
    failing = sqlite_project.add(
        "from clandestino_interfaces import AbstractMigration\n"
        "from clandestino_sqlite.infra import SQLiteInfra\n\n\n"
        "class Migration(AbstractMigration):\n"
        "    infra = SQLiteInfra()\n\n"
        "    async def up(self) -> None:\n"
        "        async with self.infra.get_cursor() as cursor:\n"
        "            cursor.execute(\"INSERT INTO things (name) VALUES ('half')\")\n"
        "        raise RuntimeError('after the insert')\n\n"
        "    async def down(self) -> None:\n"
        "        pass\n",
        "half",
    )

    result = sqlite_project.cdt("-m")

    assert result.returncode == 1
    connection = sqlite3.connect(sqlite_project.harness.path)
    assert connection.execute("SELECT name FROM things").fetchall() == [("one",), ("two",), ("3",)]
    assert failing.stem not in sqlite_project.harness.records()


def test_custom_control_table_name_is_used(sqlite_project: Project) -> None:
    name = sqlite_project.add_effect("x").stem

    result = sqlite_project.cdt("-m", env={"CLANDESTINO_CONTROL_TABLE": "schema_history"})

    assert result.returncode == 0, result.stderr
    connection = sqlite3.connect(sqlite_project.harness.path)
    assert connection.execute("SELECT migration_name FROM schema_history").fetchall() == [(name,)]


LOCAL_REPOSITORY = textwrap.dedent(
    """\
    import json
    from pathlib import Path

    from clandestino_interfaces import IMigrateRepository

    STORE = Path(__file__).with_name("applied.json")


    class MigrateRepository(IMigrateRepository):
        @classmethod
        async def create_control_table(cls) -> None:
            STORE.write_text("[]")

        @classmethod
        async def control_table_exists(cls) -> bool:
            return STORE.exists()

        @classmethod
        async def register_migration_execution(cls, migration_name: str) -> None:
            STORE.write_text(json.dumps(json.loads(STORE.read_text()) + [migration_name]))

        @classmethod
        async def migration_already_executed(cls, migration_name: str) -> bool:
            return migration_name in json.loads(STORE.read_text())

        @classmethod
        async def remove_migration_execution(cls, migration_name: str) -> None:
            names = json.loads(STORE.read_text())
            names.remove(migration_name)
            STORE.write_text(json.dumps(names))
    """
)


def test_a_local_repository_py_replaces_the_backends(sqlite_project: Project) -> None:
    (sqlite_project.migrations / "repository.py").write_text(LOCAL_REPOSITORY)
    names = [
        sqlite_project.add(
            "from clandestino_sqlite import ref\nMigration = ref.Migration\n", t
        ).stem
        for t in ("a", "b")
    ]
    store = sqlite_project.migrations / "applied.json"

    first = sqlite_project.cdt("-m")

    assert first.returncode == 0, first.stderr
    assert json.loads(store.read_text()) == names
    assert "Migration repository mode is: LOCAL (" in first.stdout
    assert first.stderr.count("has no lock") == 1
    second = sqlite_project.cdt("-m")
    assert [line.endswith("⏭️") for line in second.stdout.splitlines() if "-> running" in line] == [
        True,
        True,
    ]
    assert sqlite_project.cdt("-rm", "-y").returncode == 0
    assert json.loads(store.read_text()) == names[:1]
    assert not sqlite_project.harness.path.exists() or not sqlite_project.harness.control_exists()


def test_a_broken_local_repository_is_named(sqlite_project: Project) -> None:
    (sqlite_project.migrations / "repository.py").write_text("class Nothing:\n    pass\n")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 2
    assert "repository.py: no MigrateRepository class" in result.stderr


def test_the_example_project_migrates_lists_and_rolls_back(tmp_path: Path) -> None:
    import shutil

    example = tmp_path / "examples"
    shutil.copytree(Path(__file__).parents[1] / "examples", example)
    (example / "clandestino.db").unlink(missing_ok=True)

    def cdt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CDT, *args], cwd=example, env=clean_environ(), capture_output=True, text=True
        )

    applied = cdt("-m")
    assert applied.returncode == 0, applied.stderr
    assert "Done: 3 applied, 0 skipped, 0 failed" in applied.stdout
    assert cdt("-rm", "-y").returncode == 0
    users = sqlite3.connect(example / "clandestino.db").execute("SELECT count(*) FROM users")
    assert users.fetchone() == (0,)
    assert "Done: 1 applied, 2 skipped" in cdt("-m").stdout


def test_the_env_example_parses_and_changes_nothing(sqlite_project: Project) -> None:
    example = Path(__file__).parents[1] / ".env.example"
    (sqlite_project.root / ".env").write_text(example.read_text())
    sqlite_project.add_effect("x")

    result = sqlite_project.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert f"SQLITE ({sqlite_project.harness.path})" in result.stdout
    names = [line.split("=")[0].lstrip("# ") for line in example.read_text().splitlines()]
    documented = {name for name in names if name.startswith("CLANDESTINO_")}
    # The settings are documented on the documentation site's pages.
    docs = Path(__file__).parents[1] / "docs"
    pages = "".join(page.read_text() for page in sorted(docs.rglob("*.md")) if page.is_file())
    assert sorted(name for name in documented if name not in pages) == []
