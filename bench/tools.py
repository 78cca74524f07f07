"""The tools compared: each writes N empty migrations in its own format and names its commands.

Every tool runs from a virtualenv of its own (see `bench.envs`), by the full path of its script,
against the same server or the same kind of SQLite file. A "no-op run" is the apply command run
again once everything is applied.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

from bench.measure import Command

__all__ = ["TOOLS", "Backend", "Target", "Tool"]

Backend = Literal["postgres", "sqlite"]


@dataclass(frozen=True)
class Target:
    """Where a tool keeps its records: a PostgreSQL database, or a SQLite file."""

    backend: Backend
    database: str = ""
    socket_dir: str = ""
    path: Path | None = None

    def postgres_url(self, scheme: str) -> str:
        # No password and a socket folder as `host`: libpq, asyncpg, SQLAlchemy and yoyo all
        # read this form (the embedded server's own `postgres:@` form is not read by all).
        return f"{scheme}://postgres@/{self.database}?host={self.socket_dir}"

    @property
    def sqlite_path(self) -> Path:
        assert self.path is not None, "not a SQLite target"
        return self.path


def _clean_environment() -> dict[str, str]:
    """The caller's environment without anything that would steer a tool or its interpreter."""
    dropped = ("CLANDESTINO_", "PYTHON", "VIRTUAL_ENV", "ALEMBIC", "YOYO")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


class Tool:
    key: ClassVar[str]
    label: ClassVar[str]
    # What pip installs into the tool's own virtualenv ("{repo}" is this repository).
    requirements: ClassVar[tuple[str, ...]]
    # SQL answering how many of the N migrations are applied, on both backends.
    count_sql: ClassVar[str]

    def __init__(self, venv: Path) -> None:
        self.venv = venv

    def script(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def write_migrations(self, folder: Path, count: int) -> None:
        raise NotImplementedError

    def help(self, folder: Path) -> Command:
        raise NotImplementedError

    def apply(self, folder: Path, target: Target) -> Command:
        raise NotImplementedError

    def listing(self, folder: Path, target: Target) -> Command:
        raise NotImplementedError


# What the original's `cdt -cm NAME` writes (its empty template), byte for byte.
_CLANDESTINO_MIGRATION = '''\
from clandestino_interfaces import AbstractMigration


class Migration(AbstractMigration):

    infra = None

    async def up(self) -> None:
        """Do modifications in database"""
        pass

    async def down(self) -> None:
        """Undo modifications in database"""
        pass
'''


class Clandestino(Tool):
    """`cdt`, the original or this project: same files, same settings, same commands."""

    count_sql = "SELECT count(*) FROM clandestino"

    def write_migrations(self, folder: Path, count: int) -> None:
        migrations = folder / "migrations"
        migrations.mkdir(parents=True)
        start = datetime(2024, 1, 1)
        for index in range(1, count + 1):
            stamp = (start + timedelta(seconds=index)).strftime("%Y_%m_%d_%H_%M_%S")
            path = migrations / f"migration_{stamp}_step{index:05d}.py"
            path.write_text(_CLANDESTINO_MIGRATION)

    def _env(self, target: Target | None) -> dict[str, str]:
        env = _clean_environment()
        # The original's help fails when no repository is set (it reads the setting with no
        # default), so it is set for the help as well.
        env["CLANDESTINO_MIGRATION_REPO"] = (
            "SQLITE" if target and target.backend == "sqlite" else "POSTGRES"
        )
        if target is None:
            return env
        if target.backend == "postgres":
            env["CLANDESTINO_POSTGRES_CONNECTION_STRING"] = target.postgres_url("postgresql")
        else:
            env["CLANDESTINO_SQLITE_DB_PATH"] = str(target.sqlite_path)
        return env

    def help(self, folder: Path) -> Command:
        return Command([self.script("cdt"), "-h"], folder, self._env(None))

    def apply(self, folder: Path, target: Target) -> Command:
        return Command([self.script("cdt"), "-m"], folder, self._env(target))

    def listing(self, folder: Path, target: Target) -> Command:
        return Command([self.script("cdt"), "-lm"], folder, self._env(target))


class Original(Clandestino):
    key = "original"
    label = "original 0.1.14"
    requirements = (
        "clandestino==0.1.14",
        "clandestino-postgres==0.1.1",
        "clandestino-sqlite==0.1.3",
        "psycopg[binary]==3.3.9",
    )


class Project(Clandestino):
    key = "project"
    label = "this project"
    # A regular (not editable) install of the working tree, as users get it.
    requirements = ("{repo}[postgres]",)


_YOYO_MIGRATION = """\
from yoyo import step


def nothing(conn):
    pass


steps = [step(nothing)]
"""


class Yoyo(Tool):
    key = "yoyo"
    label = "yoyo 9.0.0"
    requirements = ("yoyo-migrations==9.0.0", "psycopg[binary]==3.3.9")
    count_sql = "SELECT count(*) FROM _yoyo_migration"

    def write_migrations(self, folder: Path, count: int) -> None:
        migrations = folder / "migrations"
        migrations.mkdir(parents=True)
        for index in range(1, count + 1):
            # One step that runs no statement, like the empty up() of the others.
            (migrations / f"m{index:05d}.py").write_text(_YOYO_MIGRATION)

    def _url(self, target: Target) -> str:
        if target.backend == "postgres":
            return target.postgres_url("postgresql+psycopg")
        return f"sqlite:///{target.sqlite_path}"

    def _yoyo(self, folder: Path, *arguments: str) -> Command:
        return Command([self.script("yoyo"), *arguments], folder, _clean_environment())

    def help(self, folder: Path) -> Command:
        return self._yoyo(folder, "--help")

    def apply(self, folder: Path, target: Target) -> Command:
        database = self._url(target)
        return self._yoyo(
            folder, "apply", "--batch", "--no-config-file", "--database", database, "migrations"
        )

    def listing(self, folder: Path, target: Target) -> Command:
        return self._yoyo(
            folder, "list", "--no-config-file", "--database", self._url(target), "migrations"
        )


_ALEMBIC_INI = """\
[alembic]
script_location = %(here)s
"""

# The smallest env.py that runs migrations online: one connection, one transaction (the default).
_ALEMBIC_ENV = """\
import os

from alembic import context
from sqlalchemy import create_engine, pool

engine = create_engine(os.environ["BENCH_DATABASE_URL"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""

_ALEMBIC_REVISION = """\
revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
"""


class Alembic(Tool):
    key = "alembic"
    label = "alembic 1.20.1"
    requirements = ("alembic==1.20.1", "SQLAlchemy==2.1.9", "psycopg[binary]==3.3.9")
    # Revisions are r00001 .. rN in a line, so the current one tells how many are applied.
    count_sql = "SELECT CAST(substr(version_num, 2) AS INTEGER) FROM alembic_version"

    def write_migrations(self, folder: Path, count: int) -> None:
        versions = folder / "versions"
        versions.mkdir(parents=True)
        (folder / "alembic.ini").write_text(_ALEMBIC_INI)
        (folder / "env.py").write_text(_ALEMBIC_ENV)
        previous = None
        for index in range(1, count + 1):
            revision = f"r{index:05d}"
            text = _ALEMBIC_REVISION.format(revision=revision, down_revision=previous)
            (versions / f"{revision}.py").write_text(text)
            previous = revision

    def _alembic(self, folder: Path, target: Target | None, *arguments: str) -> Command:
        env = _clean_environment()
        if target is not None:
            env["BENCH_DATABASE_URL"] = (
                target.postgres_url("postgresql+psycopg")
                if target.backend == "postgres"
                else f"sqlite:///{target.sqlite_path}"
            )
        return Command([self.script("alembic"), *arguments], folder, env)

    def help(self, folder: Path) -> Command:
        return self._alembic(folder, None, "--help")

    def apply(self, folder: Path, target: Target) -> Command:
        return self._alembic(folder, target, "upgrade", "head")

    def listing(self, folder: Path, target: Target) -> Command:
        return self._alembic(folder, target, "history", "--indicate-current")


TOOLS: Mapping[str, type[Tool]] = {tool.key: tool for tool in (Original, Project, Yoyo, Alembic)}
