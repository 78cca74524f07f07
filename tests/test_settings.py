"""Where settings come from, as the original found them, and when the SQLite default is refused.

The original read every setting through python-decouple's AutoConfig: the environment first, then
the first folder from the working directory upward holding a `settings.ini` ([settings]) or a
`.env`. Projects are laid out here as teams lay them out: settings in a parent folder, in
settings.ini, with stray whitespace. Every case runs a real `cdt` and checks the database.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import CDT, clean_environ, skip_outside_ci

FIRST = "migration_2024_01_01_00_00_01_first"
SQLITE_MIGRATION = textwrap.dedent(
    """\
    from clandestino_interfaces import AbstractMigration


    class Migration(AbstractMigration):
        infra = None

        async def up(self) -> None:
            pass

        async def down(self) -> None:
            pass
    """
)
POSTGRES_MIGRATION = textwrap.dedent(
    """\
    from clandestino_postgres.infra import PostgresInfra
    from clandestino_interfaces import AbstractMigration


    class Migration(AbstractMigration):
        infra = PostgresInfra()

        async def up(self) -> None:
            async with self.infra.connection() as conn:
                await conn.execute("CREATE TABLE {table} (id int)")

        async def down(self) -> None:
            async with self.infra.connection() as conn:
                await conn.execute("DROP TABLE {table}")
    """
)


def cdt(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CDT, *args],
        cwd=cwd,
        env={**clean_environ(), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def records(database: Path) -> list[str]:
    connection = sqlite3.connect(database)
    try:
        return [row[0] for row in connection.execute("SELECT migration_name FROM clandestino")]
    finally:
        connection.close()


def service(tmp_path: Path, migration: str = SQLITE_MIGRATION) -> Path:
    """team/service/migrations/<one migration>: the service folder is where `cdt` runs."""
    folder = tmp_path / "team" / "service"
    (folder / "migrations").mkdir(parents=True)
    (folder / "migrations" / f"{FIRST}.py").write_text(migration)
    return folder


def every_file(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if "__pycache__" not in path.parts}


def test_a_dotenv_in_a_parent_folder_is_used(tmp_path: Path) -> None:
    folder = service(tmp_path)
    database = tmp_path / "from-parent.db"
    (tmp_path / "team" / ".env").write_text(f"CLANDESTINO_SQLITE_DB_PATH={database}\n")

    result = cdt(folder, "-m")

    assert result.returncode == 0, result.stderr
    assert records(database) == [FIRST]
    assert not (folder / "clandestino.db").exists()


def test_settings_ini_is_read_with_its_names_in_any_case(tmp_path: Path) -> None:
    folder = service(tmp_path)
    database = tmp_path / "from-ini.db"
    (tmp_path / "team" / "settings.ini").write_text(
        f"[settings]\nclandestino_sqlite_db_path = {database}\nCLANDESTINO_LOCK_TIMEOUT=5\n"
    )

    result = cdt(folder, "-m")

    assert result.returncode == 0, result.stderr
    assert records(database) == [FIRST]


def test_the_nearest_folder_wins_and_settings_ini_before_dotenv_in_it(tmp_path: Path) -> None:
    folder = service(tmp_path)
    near, far, beside = tmp_path / "near.db", tmp_path / "far.db", tmp_path / "beside.db"
    (tmp_path / "team" / ".env").write_text(f"CLANDESTINO_SQLITE_DB_PATH={far}\n")
    (folder / ".env").write_text(f"CLANDESTINO_SQLITE_DB_PATH={beside}\n")
    (folder / "settings.ini").write_text(f"[settings]\nCLANDESTINO_SQLITE_DB_PATH={near}\n")

    result = cdt(folder, "-m")

    assert result.returncode == 0, result.stderr
    assert records(near) == [FIRST]
    assert not far.exists() and not beside.exists()


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    folder = service(tmp_path)
    from_file, from_env = tmp_path / "file.db", tmp_path / "env.db"
    (tmp_path / "team" / "settings.ini").write_text(
        f"[settings]\nCLANDESTINO_SQLITE_DB_PATH={from_file}\n"
    )

    result = cdt(folder, "-m", env={"CLANDESTINO_SQLITE_DB_PATH": str(from_env)})

    assert result.returncode == 0, result.stderr
    assert records(from_env) == [FIRST]
    assert not from_file.exists()


def test_debug_names_the_settings_file_used(tmp_path: Path) -> None:
    folder = service(tmp_path)
    ini = tmp_path / "team" / "settings.ini"
    ini.write_text(f"[settings]\nCLANDESTINO_SQLITE_DB_PATH={tmp_path / 'x.db'}\n")

    used = cdt(folder, "-lm", "--debug")
    none = cdt(tmp_path, "-lm", "--debug")

    assert used.returncode == 0, used.stderr
    assert f"debug: settings from the environment, then file: {ini}" in used.stderr
    assert "then file: none (no settings.ini or .env from" in none.stderr


def test_a_percent_in_settings_ini_is_refused_without_its_value(tmp_path: Path) -> None:
    folder = service(tmp_path)
    (folder / "settings.ini").write_text(
        "[settings]\nCLANDESTINO_MIGRATION_REPO = POSTGRES\n"
        "CLANDESTINO_POSTGRES_CONNECTION_STRING = postgresql://u:50%off@h/db\n"
    )

    result = cdt(folder, "-m")

    assert result.returncode == 2
    assert "CLANDESTINO_POSTGRES_CONNECTION_STRING has a `%` that is not `%%`" in result.stderr
    assert "50%off" not in result.stderr + result.stdout


@pytest.mark.parametrize("layout", ["environment", "parent .env", "settings.ini"])
def test_a_misspelt_repository_setting_runs_nothing_against_postgres(
    tmp_path: Path, postgres_url: str, layout: str
) -> None:
    """Issue 11, observation 1: the typo chose SQLite, ran the migration against PostgreSQL and
    recorded it in a new clandestino.db; now nothing runs and nothing is written anywhere."""
    table = f"typo_{abs(hash((str(tmp_path), layout))) % 10**9}"
    folder = service(tmp_path, POSTGRES_MIGRATION.format(table=table))
    settings = {
        "CLANDESTINO_MIGRATIONS_REPO": "POSTGRES",
        "CLANDESTINO_POSTGRES_CONNECTION_STRING": postgres_url,
    }
    env: dict[str, str] = {}
    if layout == "environment":
        env = settings
    elif layout == "parent .env":
        (tmp_path / "team" / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    else:
        lines = "".join(f"{k} = {v.replace('%', '%%')}\n" for k, v in settings.items())
        (tmp_path / "team" / "settings.ini").write_text(f"[settings]\n{lines}")
    before = every_file(tmp_path)

    result = cdt(folder, "-m", env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "CLANDESTINO_MIGRATIONS_REPO" in result.stderr
    assert "misspelt CLANDESTINO_MIGRATION_REPO" in result.stderr
    assert every_file(tmp_path) == before, "something was written"
    assert not _table_exists(postgres_url, table)


def _table_exists(url: str, table: str) -> bool:
    import asyncio

    import asyncpg

    async def look() -> bool:
        connection = await asyncpg.connect(url)
        try:
            return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table))
        finally:
            await connection.close()

    return asyncio.run(look())


def test_surrounding_whitespace_is_stripped_from_every_setting_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    """Issue 18, item 4: a trailing space became part of the database name."""
    # Names of this test's own: the server may be a user's, shared by other runs.
    suffix = uuid.uuid4().hex[:12]
    table, control = f"spaced_{suffix}", f"spaced_records_{suffix}"
    folder = service(tmp_path, POSTGRES_MIGRATION.format(table=table))
    (folder / ".env").write_text(
        f"CLANDESTINO_MIGRATION_REPO=' postgres '\n"
        f"CLANDESTINO_POSTGRES_CONNECTION_STRING=' {postgres_url} '\n"
        f"CLANDESTINO_CONTROL_TABLE=' {control} '\n"
    )

    try:
        result = cdt(folder, "-m", env={"CLANDESTINO_LOCK_TIMEOUT": " 30 "})

        assert result.returncode == 0, result.stdout + result.stderr
        assert _table_exists(postgres_url, table)
        assert _table_exists(postgres_url, control)
    finally:
        _drop_tables(postgres_url, table, control)


def _drop_tables(url: str, *tables: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect(url)
        try:
            for table in tables:
                await connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        finally:
            await connection.close()

    asyncio.run(drop())


def test_surrounding_whitespace_is_stripped_from_a_sqlite_path(tmp_path: Path) -> None:
    folder = service(tmp_path)

    result = cdt(folder, "-m", env={"CLANDESTINO_SQLITE_DB_PATH": " app.db \t"})

    assert result.returncode == 0, result.stderr
    assert records(folder / "app.db") == [FIRST]
    assert [p.name for p in folder.iterdir() if p.name != p.name.strip()] == []


def test_an_explicit_sqlite_choice_is_not_questioned(tmp_path: Path) -> None:
    folder = service(tmp_path, SQLITE_MIGRATION + "# import clandestino_postgres\n")
    (folder / "migrations" / f"{FIRST}.py").write_text(
        "from clandestino_postgres.infra import PostgresInfra  # noqa\n" + SQLITE_MIGRATION
    )

    result = cdt(
        folder,
        "-lm",
        env={"CLANDESTINO_MIGRATION_REPO": "SQLITE", "CLANDESTINO_MIGRATIONS_REPO": "x"},
    )

    assert result.returncode == 0, result.stderr


ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_environ(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_original_backend_distribution_beside_this_one_is_refused_with_the_repair(
    tmp_path: Path,
) -> None:
    """Issue 11, observation 8, with the original's real clandestino-sqlite from PyPI: it
    overwrites our clandestino_sqlite; a run stops, before anything, with the pip commands."""
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    ours = _run(*pip, ROOT)
    assert ours.returncode == 0, ours.stderr
    original = _run(*pip, "clandestino-sqlite==0.1.3")
    if original.returncode != 0:
        skip_outside_ci(f"cannot install clandestino-sqlite from PyPI: {original.stderr[-300:]}")
    folder = service(tmp_path)
    before = every_file(folder)

    refused = _run(venv / "bin" / "cdt", "-m", cwd=folder)
    helped = _run(venv / "bin" / "cdt", "-h", cwd=folder)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the original tool's clandestino-sqlite is installed beside this clandestino" in (
        refused.stderr
    )
    assert "replaces its clandestino_sqlite" in refused.stderr
    assert f"{python} -m pip uninstall -y clandestino-sqlite && " in refused.stderr
    assert f"{python} -m pip install --force-reinstall 'clandestino'" in refused.stderr
    assert every_file(folder) == before
    assert helped.returncode == 0
    # The repair, with this checkout standing in for the published distribution.
    assert _run(python, "-m", "pip", "uninstall", "-y", "clandestino-sqlite").returncode == 0
    assert _run(*pip, "--force-reinstall", "--no-deps", ROOT).returncode == 0
    repaired = _run(venv / "bin" / "cdt", "-m", cwd=folder)
    assert repaired.returncode == 0, repaired.stderr
    assert records(folder / "clandestino.db") == [FIRST]
