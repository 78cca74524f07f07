"""Bad input, as one catalog: every case is refused (or, for the warn-only ones, warned about)
with one clear line saying what is wrong, where, and how to fix it, with the documented exit code,
no traceback (unless --debug) and nothing written to the database or the project folder.

Each case runs a real `cdt` on the SQLite default. Most first write a good pending migration, so
that a run that went ahead anyway would leave a trace; the policy cases first apply good
migrations with a normal `cdt -m`. The project and the database are snapshotted after that setup.

The policy for records and files that disagree (a record whose file is gone, a file changed since
it was applied, a new file that sorts before the last applied one): warn by default and go on;
refuse with `--strict` (or CLANDESTINO_STRICT=true) before anything is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CDT, Project

# A setup writes files into the project and returns extra settings for the run, if any.
Setup = Callable[[Project], Mapping[str, str] | None]

FIRST = "migration_2024_01_01_00_00_01_first"
BROKEN = "migration_2024_01_01_00_00_02_broken"
LATE = "migration_2024_01_01_00_00_02_late"
SECOND = "migration_2024_01_01_00_00_03_second"
NEXT = "migration_2024_01_01_00_00_04_next"

VALID = textwrap.dedent(
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
# Line numbers in VALID, for the "where" of the messages below.
CLASS_LINE, UP_LINE, DOWN_LINE = 4, 7, 10
IMPORT_TRAP = 'raise RuntimeError("this file must never be imported")\n'
# A misnamed migration: it defines a Migration class (so it is warned about) and must not run.
MISNAMED_TRAP = IMPORT_TRAP + "\n\nclass Migration:\n    pass\n"
UNREACHABLE = "127.0.0.1:9"
EXIT_UNPRIVILEGED_UNAVAILABLE = 77

# Runs a command without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that root too is refused
# by file modes (dropped from the bounding set, they are gone from the exec'd process).
_DROP_CAPABILITIES = f"""\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for capability in (1, 2):
    if libc.prctl(24, capability, 0, 0, 0) != 0:
        print("cannot drop capabilities", file=sys.stderr)
        sys.exit({EXIT_UNPRIVILEGED_UNAVAILABLE})
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass(frozen=True)
class Case:
    """One bad input.

    expect: substrings of the one `error:` line (or, when exit_code is 0, of a `warning:` line):
    what is wrong, where (file, setting, option) and the hint. applies: for warn-only runs, the
    pending migrations that legitimately run all the same. forbid: text that must appear nowhere
    in the output (a secret, a misleading hint). unprivileged: run without root's power to read
    any file, so that file modes count.
    """

    id: str
    args: tuple[str, ...]
    exit_code: int
    expect: tuple[str, ...]
    setup: Setup
    env: Mapping[str, str] = field(default_factory=dict)
    applies: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    unprivileged: bool = False

    @property
    def warns_only(self) -> bool:
        return self.exit_code == 0


# Setups -------------------------------------------------------------------------------------


def _write(project: Project, name: str, content: str | bytes) -> Path:
    path = project.migrations / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _effect(project: Project, name: str) -> None:
    _write(project, f"{name}.py", project.harness.effect_migration(name.rsplit("_", 1)[-1]))


def pending(project: Project) -> None:
    """One good migration waiting: a run that went ahead despite the bad input would apply it."""
    _effect(project, FIRST)


def broken(content: str | bytes, name: str = f"{BROKEN}.py") -> Setup:
    """A good pending migration, then a broken one after it."""

    def setup(project: Project) -> None:
        pending(project)
        _write(project, name, content)

    return setup


def applied(*then: Setup) -> Setup:
    """FIRST and SECOND applied by a normal `cdt -m`, then `then` done to the project."""

    def setup(project: Project) -> Mapping[str, str]:
        _effect(project, FIRST)
        _effect(project, SECOND)
        result = project.cdt("-m")
        assert result.returncode == 0, result.stderr
        assert project.harness.records() == [FIRST, SECOND]
        return together(*then)(project) or {}

    return setup


def with_files(files: Mapping[str, str | bytes]) -> Setup:
    """Extra files in the migrations folder, by name."""

    def setup(project: Project) -> None:
        for name, content in files.items():
            _write(project, name, content)

    return setup


def together(*setups: Setup) -> Setup:
    def setup(project: Project) -> Mapping[str, str]:
        env: dict[str, str] = {}
        for step in setups:
            env.update(step(project) or {})
        return env

    return setup


def removed(name: str) -> Setup:
    def setup(project: Project) -> None:
        (project.migrations / f"{name}.py").unlink()

    return setup


def edited(name: str) -> Setup:
    def setup(project: Project) -> None:
        with (project.migrations / f"{name}.py").open("a", encoding="utf-8") as file:
            file.write("# edited after it was applied\n")

    return setup


def added(name: str) -> Setup:
    def setup(project: Project) -> None:
        _effect(project, name)

    return setup


def dotenv(content: bytes) -> Setup:
    def setup(project: Project) -> None:
        pending(project)
        (project.root / ".env").write_bytes(content)

    return setup


def settings_file(name: str, content: str) -> Setup:
    """A settings file (.env or settings.ini) in the project folder, nothing else."""

    def setup(project: Project) -> None:
        (project.root / name).write_text(content, encoding="utf-8")

    return setup


def migrations_is_a_file(project: Project) -> None:
    project.migrations.rmdir()
    project.migrations.write_text("not a folder\n")


def unreadable(relative: str) -> Setup:
    def setup(project: Project) -> None:
        pending(project)
        target = project.migrations / relative
        if not target.exists():
            target.write_text(VALID)
        target.chmod(0)

    return setup


def without_driver(driver: str) -> Setup:
    """A package on PYTHONPATH that shadows `driver` and fails to import, as if not installed."""

    def setup(project: Project) -> Mapping[str, str]:
        pending(project)
        shadow = project.root.parent / f"without-{driver}" / driver
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(f'raise ImportError("No module named {driver}")\n')
        return {"PYTHONPATH": str(shadow.parent)}

    return setup


def _source(*replacements: tuple[str, str]) -> str:
    text = VALID
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    return text


def _postgres(url: str, **more: str) -> dict[str, str]:
    return {
        "CLANDESTINO_MIGRATION_REPO": "postgres",
        "CLANDESTINO_POSTGRES_CONNECTION_STRING": url,
        "CLANDESTINO_CONNECT_TIMEOUT": "2",
        **more,
    }


def _mongo(url: str) -> dict[str, str]:
    return {
        "CLANDESTINO_MIGRATION_REPO": "mongo",
        "CLANDESTINO_MONGO_CONNECTION_STRING": url,
        "CLANDESTINO_CONNECT_TIMEOUT": "2",
    }


def _elasticsearch(url: str, **more: str) -> dict[str, str]:
    return {
        "CLANDESTINO_MIGRATION_REPO": "elasticsearch",
        "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url,
        "CLANDESTINO_CONNECT_TIMEOUT": "2",
        **more,
    }


_NAMING = "migration files are named migration_<stamp>_<name>.py"
_PLAIN_IDENTIFIER = "use letters, digits and underscores, not starting with a digit"
_SEE_HELP = "see `cdt -h`"
_FILE = f"{BROKEN}.py"

# The catalog ---------------------------------------------------------------------------------

CASES = [
    # Migration files: each stops the run before anything, even the good one before it, runs.
    Case(
        "file-syntax-error",
        ("-m",),
        2,
        (f"{_FILE}, line {CLASS_LINE}: syntax error", "fix the file"),
        broken(_source(("(AbstractMigration):", "(AbstractMigration)"))),
    ),
    Case(
        "file-syntax-error-in-dry-run",
        ("-m", "--dry-run"),
        2,
        (f"{_FILE}, line {CLASS_LINE}: syntax error", "fix the file"),
        broken(_source(("(AbstractMigration):", "(AbstractMigration)"))),
    ),
    Case(
        "file-import-error",
        ("-m",),
        2,
        (
            "cannot import",
            f"{_FILE}, line 1: ModuleNotFoundError: No module named 'clandestino_no_such'",
            "install the package that provides 'clandestino_no_such'",
        ),
        broken("import clandestino_no_such\n" + VALID),
    ),
    Case(
        "file-raises-when-imported",
        ("-m",),
        2,
        (f"{_FILE}, line 2: RuntimeError: FOO is not set", "fix the file"),
        broken('import os\nraise RuntimeError("FOO is not set")\n'),
    ),
    Case(
        "file-exits-when-imported",
        ("-m",),
        2,
        (f"{_FILE}, line 2: SystemExit: no config", "fix the file"),
        broken('import sys\nsys.exit("no config")\n'),
    ),
    Case(
        "file-without-migration-class",
        ("-m",),
        2,
        (f"{_FILE}: no Migration class", "define `class Migration(AbstractMigration)`"),
        broken(_source(("class Migration(", "class Migrate("))),
    ),
    Case(
        "file-migration-not-a-class",
        ("-m",),
        2,
        (f"{_FILE}: no Migration class", "define `class Migration(AbstractMigration)`"),
        broken("Migration = None\n"),
    ),
    Case(
        "file-migration-not-an-abstract-migration",
        ("-m",),
        2,
        (
            f"{_FILE}, line {CLASS_LINE}: Migration is not an AbstractMigration",
            "subclass clandestino_interfaces.AbstractMigration",
        ),
        broken(_source(("class Migration(AbstractMigration):", "class Migration:"))),
    ),
    Case(
        "file-up-not-async",
        ("-m",),
        2,
        (
            f"{_FILE}, line {UP_LINE}: Migration.up is not an async function",
            "async def up(self) -> None",
        ),
        broken(_source(("async def up", "def up"))),
    ),
    Case(
        "file-down-not-async",
        ("-m",),
        2,
        (
            f"{_FILE}, line {DOWN_LINE}: Migration.down is not an async function",
            "async def down(self) -> None",
        ),
        broken(_source(("async def down", "def down"))),
    ),
    Case(
        "file-down-missing",
        ("-m",),
        2,
        (f"{_FILE}, line {CLASS_LINE}: Migration leaves down abstract", "define both"),
        broken(_source(("\n    async def down(self) -> None:\n        pass\n", ""))),
    ),
    Case(
        "file-not-utf8-in-a-string",
        ("-m",),
        2,
        (f"{_FILE}, line 1", "not valid UTF-8", "save it as UTF-8"),
        broken(b'NAME = "caf\xe9"\n' + VALID.encode()),
    ),
    Case(
        "file-not-utf8-in-a-comment",
        ("-m",),
        2,
        (f"{_FILE}, line 1", "not valid UTF-8", "save it as UTF-8"),
        broken(b"# caf\xe9\n" + VALID.encode()),
    ),
    Case(
        "file-unreadable",
        ("-m",),
        2,
        ("cannot read", f"migrations/{_FILE}", "Permission denied", "permissions"),
        unreadable(_FILE),
        unprivileged=True,
    ),
    # Files that do not follow the naming pattern: warned about, never imported, never run.
    Case(
        "name-not-a-migration",
        ("-m",),
        0,
        ("notes.py is not run", _NAMING),
        applied(with_files({"notes.py": MISNAMED_TRAP})),
    ),
    Case(
        "name-capitalised",
        ("-m",),
        0,
        ("Migration_2024_01_01_00_00_05_upper.py is not run", _NAMING),
        applied(with_files({"Migration_2024_01_01_00_00_05_upper.py": MISNAMED_TRAP})),
    ),
    # The migrations folder.
    Case(
        "folder-missing",
        ("-m", "--dir", "nowhere"),
        2,
        ("migrations folder", "nowhere does not exist", "cdt -cm NAME", "--dir"),
        pending,
    ),
    Case(
        "folder-missing-by-setting",
        ("-lm",),
        2,
        ("migrations folder", "nowhere does not exist", "CLANDESTINO_MIGRATIONS_DIR"),
        pending,
        env={"CLANDESTINO_MIGRATIONS_DIR": "nowhere"},
    ),
    Case(
        "folder-is-a-file",
        ("-m",),
        2,
        ("migrations is not a folder", "--dir"),
        migrations_is_a_file,
    ),
    Case(
        "folder-unreadable",
        ("-m",),
        2,
        ("cannot read migrations folder", "Permission denied", "permissions"),
        unreadable("."),
        unprivileged=True,
    ),
    # .env
    Case(
        "dotenv-does-not-parse",
        ("-m",),
        2,
        (".env, line 2: cannot parse 'this line is not a setting'", "NAME=value"),
        dotenv(b"CLANDESTINO_LOCK_TIMEOUT=5\nthis line is not a setting\n"),
    ),
    Case(
        "dotenv-not-utf8",
        ("-m",),
        2,
        ("cannot read", ".env", "utf-8", "fix or remove the file"),
        dotenv(b"CLANDESTINO_CONTROL_TABLE=caf\xe9\n"),
    ),
    Case(
        "dotenv-bad-value",
        ("-m",),
        2,
        ("CLANDESTINO_LOCK_TIMEOUT='soon' is not a number of seconds", "positive number"),
        dotenv(b"CLANDESTINO_LOCK_TIMEOUT=soon\n"),
    ),
    # The command line.
    Case(
        "option-unknown",
        ("-m", "--bogus"),
        2,
        ("unrecognized arguments: --bogus", _SEE_HELP),
        pending,
    ),
    Case(
        "option-abbreviated",
        ("--migrat",),
        2,
        ("unrecognized arguments: --migrat", _SEE_HELP),
        pending,
    ),
    Case(
        "option-two-commands",
        ("-m", "-lm"),
        2,
        ("not allowed with argument", _SEE_HELP),
        pending,
    ),
    Case(
        "option-strict-without-migrate",
        ("-lm", "--strict"),
        2,
        ("--strict goes with -m", _SEE_HELP),
        pending,
    ),
    Case(
        "option-no-command",
        ("--dir", "migrations"),
        2,
        ("no command given", "use one of -m, -lm, -rm, -cm"),
        pending,
    ),
    Case(
        "args-list-takes-none",
        ("-lm", "extra"),
        2,
        ("unrecognized arguments: extra", _SEE_HELP),
        pending,
    ),
    Case(
        "args-rollback-two-counts",
        ("-rm", "1", "2"),
        2,
        ("unrecognized arguments: 2", _SEE_HELP),
        applied(),
    ),
    Case(
        "args-rollback-count-not-a-number",
        ("-rm", "one"),
        2,
        ("argument -rm/--rollback", "got 'one'", _SEE_HELP),
        applied(),
    ),
    Case(
        "args-create-without-name",
        ("-cm",),
        2,
        ("argument -cm/--create: expected at least one argument", _SEE_HELP),
        pending,
    ),
    Case(
        "args-create-three",
        ("-cm", "add_users", "sqlite", "extra"),
        2,
        ("-cm takes a name and an optional type", _SEE_HELP),
        pending,
    ),
    Case(
        "args-to-without-name",
        ("-m", "--to"),
        2,
        ("argument --to: expected one argument", _SEE_HELP),
        pending,
    ),
    Case(
        "args-to-unknown-name",
        ("-m", "--to", "migration_2099_01_01_00_00_00_nope"),
        2,
        ("--to migration_2099_01_01_00_00_00_nope: no migration file of that name", "cdt -lm"),
        pending,
    ),
    # -cm
    Case(
        "create-name-with-space",
        ("-cm", "add users"),
        2,
        ("migration name 'add users' is not allowed", "letters, digits and underscores"),
        pending,
    ),
    Case(
        "create-name-with-path",
        ("-cm", "../escape"),
        2,
        ("migration name '../escape' is not allowed", "letters, digits and underscores"),
        pending,
    ),
    Case(
        "create-unknown-type",
        ("-cm", "add_users", "oracle"),
        2,
        ("migration type oracle names no installed backend", "use one of"),
        pending,
    ),
    # `-cm` never overwrites a migration (the stamp goes past every migration_* entry, and the
    # file is opened with "x"); what it can land on is a migrations path that is a file.
    Case(
        "create-onto-a-file",
        ("-cm", "add_users", "sqlite"),
        2,
        ("migrations is not a folder", "--dir"),
        migrations_is_a_file,
    ),
    # Backends, drivers, URLs, servers.
    Case(
        "backend-unknown",
        ("-m",),
        2,
        ("CLANDESTINO_MIGRATION_REPO=oracle names no installed backend", "use one of"),
        pending,
        env={"CLANDESTINO_MIGRATION_REPO": "oracle"},
    ),
    Case(
        "backend-extra-missing-postgres",
        ("-m",),
        2,
        ("postgres backend needs a driver that is not installed", "'clandestino[postgres]'"),
        without_driver("asyncpg"),
        env=_postgres(f"postgresql://app@{UNREACHABLE}/app"),
    ),
    Case(
        "backend-extra-missing-mongo",
        ("-m",),
        2,
        ("mongo backend needs a driver that is not installed", "'clandestino[mongo]'"),
        without_driver("pymongo"),
        env=_mongo(f"mongodb://{UNREACHABLE}/app"),
    ),
    Case(
        "backend-extra-missing-elasticsearch",
        ("-m",),
        2,
        (
            "elasticsearch backend needs a driver that is not installed",
            "'clandestino[elasticsearch]'",
        ),
        without_driver("elasticsearch"),
        env=_elasticsearch(f"http://{UNREACHABLE}"),
    ),
    Case(
        "url-postgres-not-set",
        ("-m",),
        2,
        ("CLANDESTINO_POSTGRES_CONNECTION_STRING is not set", "postgresql://"),
        pending,
        env={"CLANDESTINO_MIGRATION_REPO": "postgres"},
    ),
    Case(
        "url-postgres-wrong-scheme",
        ("-m",),
        2,
        ("CLANDESTINO_POSTGRES_CONNECTION_STRING must start with postgresql://", "host:5432"),
        pending,
        env=_postgres("mysql://app@db.internal/app"),
    ),
    Case(
        "url-postgres-bad-port",
        ("-m",),
        2,
        ("CLANDESTINO_POSTGRES_CONNECTION_STRING is malformed", "percent-encode"),
        pending,
        env=_postgres("postgresql://app:pw@db.internal:port/app"),
    ),
    Case(
        "url-mongo-without-database",
        ("-m",),
        2,
        ("CLANDESTINO_MONGO_CONNECTION_STRING names no database", "mongodb://host:27017/mydb"),
        pending,
        env=_mongo(f"mongodb://{UNREACHABLE}"),
    ),
    Case(
        "url-elasticsearch-bad-port",
        ("-m",),
        2,
        ("CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING is malformed", "host:9200"),
        pending,
        env=_elasticsearch("http://127.0.0.1:99999"),
    ),
    Case(
        "url-sqlite-two-slashes",
        ("-m",),
        2,
        ("CLANDESTINO_SQLITE_DB_PATH", "sqlite:///"),
        pending,
        env={"CLANDESTINO_SQLITE_DB_PATH": "sqlite://app.db"},
    ),
    Case(
        "unreachable-postgres",
        ("-m",),
        3,
        (f"cannot connect to PostgreSQL at {UNREACHABLE}/app", "check that the server is up"),
        pending,
        env=_postgres(f"postgresql://app:s3cret-pw@{UNREACHABLE}/app"),
        forbid=("s3cret-pw",),
    ),
    Case(
        "unreachable-mongo",
        ("-m",),
        3,
        (f"cannot connect to MongoDB at {UNREACHABLE}/app within 2 s", "CONNECT_TIMEOUT"),
        pending,
        env=_mongo(f"mongodb://{UNREACHABLE}/app"),
    ),
    Case(
        "unreachable-elasticsearch",
        ("-m",),
        3,
        (f"cannot connect to Elasticsearch at http://{UNREACHABLE}", "check that the node is up"),
        pending,
        env=_elasticsearch(f"http://{UNREACHABLE}"),
    ),
    # Names that end up inside statements: plain identifiers only.
    Case(
        "identifier-control-table-injection",
        ("-m",),
        2,
        (
            "CLANDESTINO_CONTROL_TABLE='clandestino; DROP TABLE users' is not a plain identifier",
            _PLAIN_IDENTIFIER,
        ),
        pending,
        env={"CLANDESTINO_CONTROL_TABLE": "clandestino; DROP TABLE users"},
    ),
    Case(
        "identifier-control-table-quote",
        ("-m",),
        2,
        ("CLANDESTINO_CONTROL_TABLE=", "is not a plain identifier", _PLAIN_IDENTIFIER),
        pending,
        env={"CLANDESTINO_CONTROL_TABLE": 'x" OR 1=1 --'},
    ),
    Case(
        "identifier-control-table-leading-digit",
        ("-m",),
        2,
        ("CLANDESTINO_CONTROL_TABLE='1deploys' is not a plain identifier", _PLAIN_IDENTIFIER),
        pending,
        env={"CLANDESTINO_CONTROL_TABLE": "1deploys"},
    ),
    Case(
        "identifier-control-table-too-long",
        ("-m",),
        2,
        ("CLANDESTINO_CONTROL_TABLE=", "is not a plain identifier", "at most 63"),
        pending,
        env={"CLANDESTINO_CONTROL_TABLE": "a" * 64},
    ),
    Case(
        "identifier-postgres-schema-injection",
        ("-m",),
        2,
        ("CLANDESTINO_POSTGRES_SCHEMA=", "is not a plain identifier", _PLAIN_IDENTIFIER),
        pending,
        env=_postgres(
            f"postgresql://app@{UNREACHABLE}/app",
            CLANDESTINO_POSTGRES_SCHEMA='public"; DROP SCHEMA public CASCADE; --',
        ),
    ),
    Case(
        "identifier-elasticsearch-index-underscore",
        ("-m",),
        2,
        ("CLANDESTINO_CONTROL_TABLE='_hidden'", "index"),
        pending,
        env=_elasticsearch(f"http://{UNREACHABLE}", CLANDESTINO_CONTROL_TABLE="_hidden"),
    ),
    Case(
        "repository-py-syntax-error",
        ("-m",),
        2,
        ("repository.py, line 1: syntax error", "fix the file"),
        broken("class MigrateRepository(\n", name="repository.py"),
    ),
    # Records and files that disagree: warn and go on by default, refuse with --strict.
    Case(
        "record-without-file-warns",
        ("-m",),
        0,
        (SECOND, "is applied but its file is gone", "restore"),
        applied(removed(SECOND), added(NEXT)),
        applies=(NEXT,),
    ),
    Case(
        "record-without-file-strict",
        ("-m", "--strict"),
        2,
        ("--strict", SECOND, "is applied but its file is gone", "restore"),
        applied(removed(SECOND), added(NEXT)),
        # --repair accepts changed files only: it would leave this refusal as it is.
        forbid=("--repair",),
    ),
    Case(
        "record-without-file-rollback",
        ("-rm", "-y"),
        2,
        (f"cannot roll back {SECOND}", "not in the migrations folder", "restore the file"),
        applied(removed(SECOND)),
    ),
    Case(
        "file-changed-warns",
        ("-m",),
        0,
        (FIRST, "changed since it was applied", "--repair"),
        applied(edited(FIRST), added(NEXT)),
        applies=(NEXT,),
    ),
    Case(
        "file-changed-strict",
        ("-m", "--strict"),
        2,
        ("--strict", FIRST, "changed since it was applied", "--repair"),
        applied(edited(FIRST), added(NEXT)),
    ),
    Case(
        "file-out-of-order-warns",
        ("-m",),
        0,
        (LATE, "sorts before", "--strict"),
        applied(added(LATE)),
        applies=(LATE,),
    ),
    Case(
        "file-out-of-order-strict",
        ("-m", "--strict"),
        2,
        ("--strict", LATE, "sorts before", "rename"),
        applied(added(LATE)),
        forbid=("--repair",),
    ),
    Case(
        "file-out-of-order-strict-by-setting",
        ("-m",),
        2,
        (
            "CLANDESTINO_STRICT=true (from the environment):",
            LATE,
            "sorts before",
            "rename",
            "or run without CLANDESTINO_STRICT=true",
        ),
        applied(added(LATE)),
        env={"CLANDESTINO_STRICT": "true"},
        forbid=("--repair", "--strict"),
    ),
    Case(
        "file-changed-strict-by-setting-in-dotenv",
        ("-m",),
        2,
        ("CLANDESTINO_STRICT=true (from ", ".env)", FIRST, "changed since it was applied"),
        applied(edited(FIRST), added(NEXT), settings_file(".env", "CLANDESTINO_STRICT= true \n")),
        forbid=("--strict",),
    ),
    # A SQLite default that something says was not meant: refused before anything is written.
    Case(
        "default-with-a-misspelt-repository-setting",
        ("-m",),
        2,
        (
            "no repository is chosen",
            "CLANDESTINO_MIGRATIONS_REPO (from the environment)",
            "misspelt CLANDESTINO_MIGRATION_REPO",
            "set CLANDESTINO_MIGRATION_REPO",
        ),
        pending,
        env={"CLANDESTINO_MIGRATIONS_REPO": "POSTGRES"},
    ),
    Case(
        "default-with-a-misspelt-setting-in-lowercase",
        ("-lm",),
        2,
        ("clandestino_migration_repo", "misspelt CLANDESTINO_MIGRATION_REPO"),
        pending,
        env={"clandestino_migration_repo": "POSTGRES"},
    ),
    Case(
        "default-with-a-postgres-connection-string",
        ("-m",),
        2,
        (
            "CLANDESTINO_POSTGRES_CONNECTION_STRING is set (from the environment)",
            "which is for POSTGRES",
            "set CLANDESTINO_MIGRATION_REPO",
        ),
        pending,
        env={"CLANDESTINO_POSTGRES_CONNECTION_STRING": "postgresql://u:hunter2x@127.0.0.1:9/db"},
        forbid=("hunter2x",),
    ),
    Case(
        "default-with-a-mongo-connection-string",
        ("-m", "--dry-run"),
        2,
        ("CLANDESTINO_MONGO_CONNECTION_STRING is set", "which is for MONGO"),
        pending,
        env={"CLANDESTINO_MONGO_CONNECTION_STRING": "mongodb://u:hunter2x@127.0.0.1:9/db"},
        forbid=("hunter2x",),
    ),
    Case(
        "default-with-migrations-importing-postgres-infra",
        ("-m",),
        2,
        (
            f"{BROKEN}.py imports clandestino_postgres, which is for POSTGRES",
            "set CLANDESTINO_MIGRATION_REPO",
        ),
        broken("from clandestino_postgres.infra import PostgresInfra\n" + IMPORT_TRAP),
    ),
    Case(
        "default-with-migrations-importing-elasticsearch-infra",
        ("-lm",),
        2,
        (f"{BROKEN}.py imports clandestino_elasticsearch, which is for ELASTICSEARCH",),
        broken("import clandestino_elasticsearch.infra\n" + IMPORT_TRAP),
    ),
    Case(
        "repository-minio-without-its-bucket-url",
        ("-m",),
        2,
        ("CLANDESTINO_BUCKET_CONNECTION_STRING is not set",),
        pending,
        env={"CLANDESTINO_MIGRATION_REPO": "MINIO"},
        forbid=("names no installed backend", "not supported"),
    ),
    Case(
        "repository-qdrant-without-its-url",
        ("-lm",),
        2,
        ("CLANDESTINO_QDRANT_CONNECTION_STRING is not set",),
        pending,
        env={"CLANDESTINO_MIGRATION_REPO": "qdrant"},
        forbid=("names no installed backend", "not supported"),
    ),
    Case(
        "sqlite-path-in-a-missing-folder",
        ("-m",),
        2,
        ("CLANDESTINO_SQLITE_DB_PATH=no-such/sub/app.db", "the folder", "no-such does not exist"),
        pending,
        env={"CLANDESTINO_SQLITE_DB_PATH": "no-such/sub/app.db"},
        forbid=("permissions",),
    ),
    Case(
        "sqlite-path-in-a-missing-folder-listing",
        ("-lm",),
        2,
        ("the folder", "gone does not exist"),
        pending,
        env={"CLANDESTINO_SQLITE_DB_PATH": "sqlite:///gone/app.db"},
    ),
    Case(
        "strict-setting-malformed",
        ("-m",),
        2,
        ("CLANDESTINO_STRICT='maybe' is not true or false", "use true or false"),
        pending,
        env={"CLANDESTINO_STRICT": "maybe"},
    ),
    Case(
        "event-loop-setting-unknown",
        ("-m",),
        2,
        ("CLANDESTINO_EVENT_LOOP='trio' names no event loop", "use uvloop or asyncio"),
        pending,
        env={"CLANDESTINO_EVENT_LOOP": "trio"},
    ),
    Case(
        "event-loop-uvloop-not-installed",
        ("-m",),
        2,
        ("CLANDESTINO_EVENT_LOOP=uvloop, but uvloop is not installed", "pip install uvloop"),
        without_driver("uvloop"),
        env={"CLANDESTINO_EVENT_LOOP": "uvloop"},
    ),
]

# Helpers -------------------------------------------------------------------------------------


def run_cdt(
    project: Project, args: tuple[str, ...], env: Mapping[str, str], unprivileged: bool = False
) -> subprocess.CompletedProcess[str]:
    """`cdt args` in the project, as Project.cdt does, optionally without root's file powers."""
    dropping = unprivileged and os.geteuid() == 0
    prefix = [sys.executable, "-c", _DROP_CAPABILITIES] if dropping else []
    result = subprocess.run(
        [*prefix, CDT, *args],
        cwd=project.root,
        env={**project.env, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode == EXIT_UNPRIVILEGED_UNAVAILABLE and prefix:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here, so root reads any file whatever its mode")
    return result


def prepare(project: Project, case: Case) -> dict[str, str]:
    return {**case.env, **(case.setup(project) or {})}


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under `roots` with its bytes (None for a folder); the roots themselves too.

    Python's bytecode cache is left out: Python, not `cdt`, writes it beside an imported module
    unless PYTHONDONTWRITEBYTECODE is set, and a user's shell does not set it."""
    state: dict[str, bytes | None] = {}
    for root in roots:
        for path in [root, *sorted(root.rglob("*"))] if root.exists() else []:
            if is_bytecode_cache(path.relative_to(root)):
                continue
            if path.is_dir():
                state[str(path)] = None
                continue
            try:
                state[str(path)] = path.read_bytes()
            except OSError:
                state[str(path)] = f"<unreadable, mode {path.stat().st_mode:o}>".encode()
    return state


def is_bytecode_cache(relative: Path) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def restore_permissions(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def the_line(case: Case, result: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line (or the expected `warning:` line), after checking stderr's shape."""
    shown = f"exit {result.returncode}\nstderr:\n{result.stderr}stdout:\n{result.stdout}"
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    warnings = [line for line in lines if line.startswith("warning: ")]
    others = [line for line in lines if line not in errors and line not in warnings]
    assert result.returncode == case.exit_code, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert others == [], f"stderr holds more than error:/warning: lines\n{shown}"
    if case.warns_only:
        assert errors == [], shown
        assert warnings, f"no warning\n{shown}"
        return max(warnings, key=lambda line: sum(part in line for part in case.expect))
    assert len(errors) == 1, f"expected exactly one error: line\n{shown}"
    return errors[0]


def check_expected(case: Case, line: str, result: subprocess.CompletedProcess[str]) -> None:
    missing = [part for part in case.expect if part not in line]
    present = [part for part in case.forbid if part in result.stdout + result.stderr]
    assert (missing, present) == ([], []), f"lacks {missing}, holds {present}:\n{line}"


# Tests ---------------------------------------------------------------------------------------


def test_the_catalog_is_large_and_its_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 25
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_one_line_its_exit_code_and_changes_nothing(
    sqlite_project: Project, case: Case
) -> None:
    project = sqlite_project
    env = prepare(project, case)
    records = project.harness.records()
    files_before = snapshot(project.root)
    database_before = snapshot(project.harness.workdir)
    try:
        result = run_cdt(project, case.args, env, case.unprivileged)

        line = the_line(case, result)
        check_expected(case, line, result)
        assert snapshot(project.root) == files_before, "the project folder changed"
        if case.applies:
            assert project.harness.records() == [*records, *case.applies]
            assert f"Done: {len(case.applies)} applied" in result.stdout
        else:
            assert snapshot(project.harness.workdir) == database_before, "the database changed"
    finally:
        restore_permissions(project.root)


DEBUG_CASES = {
    "file-syntax-error",
    "file-import-error",
    "dotenv-does-not-parse",
    "option-unknown",
    "backend-extra-missing-postgres",
    "unreachable-postgres",
    "record-without-file-strict",
}


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.id in DEBUG_CASES],
    ids=[case.id for case in CASES if case.id in DEBUG_CASES],
)
def test_debug_adds_the_traceback_to_the_same_line(sqlite_project: Project, case: Case) -> None:
    env = prepare(sqlite_project, case)

    plain = run_cdt(sqlite_project, case.args, env)
    debug = run_cdt(sqlite_project, (*case.args, "--debug"), env)

    assert plain.returncode == debug.returncode == case.exit_code, debug.stderr
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    [line] = [line for line in plain.stderr.splitlines() if line.startswith("error: ")]
    assert debug.stderr.splitlines().count(line) == 1


def test_every_debug_case_is_in_the_catalog() -> None:
    assert {case.id for case in CASES} >= DEBUG_CASES
