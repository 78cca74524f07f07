"""What a newcomer trips on in daily use (issue 18): JSON that stays JSON, flags CI scripts pass
to every command, warnings in their place, messages that name what the user gave and say the
state things are in, one text per error, an exit code of its own for a bug in the tool, and no
private standard-library API outside one tested function."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import clandestino
import clandestino.errors
from clandestino.errors import ClandestinoError, MigrationFailed
from tests.conftest import CDT, Project

CHATTY = textwrap.dedent(
    """\
    import os
    import sys
    import warnings

    from clandestino_interfaces import AbstractMigration


    class Migration(AbstractMigration):
        async def up(self) -> None:
            print("print() from up")
            sys.stdout.write("sys.stdout.write from up\\n")
            os.write(1, b"os.write(1) from up\\n")
            os.system("echo a child process writing to its stdout")
            warnings.warn("a driver's warning")

        async def down(self) -> None:
            print("print() from down")
            os.write(1, b"os.write(1) from down\\n")
    """
)
CHATTER = [
    "print() from up",
    "sys.stdout.write from up",
    "os.write(1) from up",
    "a child process writing to its stdout",
    "a driver's warning",
]


def _json_lines(stdout: str) -> list[dict[str, object]]:
    """Every line of `stdout` as JSON: a line that is not fails the test."""
    return [json.loads(line) for line in stdout.splitlines()]


def _merged(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """`cdt` with standard error into standard output, to see the order of lines as a person
    at a terminal does."""
    return subprocess.run(
        [CDT, *args],
        cwd=project.root,
        env=project.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


# 1. --json


def test_json_stdout_holds_nothing_but_json_when_migrations_print(sqlite_project: Project) -> None:
    name = sqlite_project.add(CHATTY, "chatty").stem

    applied = sqlite_project.cdt("-m", "--json")
    rolled_back = sqlite_project.cdt("-rm", "-y", "--json")

    assert applied.returncode == 0, applied.stderr
    events = _json_lines(applied.stdout)
    assert (events[-2]["event"], events[-2]["name"]) == ("migration_succeeded", name)
    for text in CHATTER:
        assert text in applied.stderr
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert _json_lines(rolled_back.stdout)[-1]["event"] == "run_finished"
    assert "print() from down" in rolled_back.stderr
    assert "os.write(1) from down" in rolled_back.stderr
    assert sqlite_project.harness.records() == []


@pytest.mark.parametrize(
    "args",
    [["-h"], ["-lm"], ["-cm", "next"], ["--repair", "-y"], ["-rm", "-y"], ["-m", "--dry-run"]],
)
def test_json_stdout_is_json_for_every_command(sqlite_project: Project, args: list[str]) -> None:
    result = sqlite_project.cdt(*args, "--json")

    assert result.returncode == 0, result.stderr
    assert _json_lines(result.stdout), "no event at all"


def test_json_error_is_the_only_line_on_stdout_after_a_printing_migration_fails(
    sqlite_project: Project,
) -> None:
    failing = CHATTY.replace('warnings.warn("a driver\'s warning")', 'raise RuntimeError("no")')
    sqlite_project.add(failing, "failing")

    result = sqlite_project.cdt("-m", "--json")

    assert result.returncode == 1
    events = _json_lines(result.stdout)
    assert events[-1]["event"] == "error" and events[-1]["exit_code"] == 1
    assert "os.write(1) from up" in result.stderr


# 2. -y and the other flags CI scripts pass to every command


@pytest.mark.parametrize(
    "command",
    [["-m"], ["-lm"], ["-h"], ["-cm", "next"], ["--repair"], ["-rm"], ["-m", "--dry-run"]],
)
def test_the_flags_ci_passes_blindly_are_accepted_by_every_command(
    sqlite_project: Project, command: list[str]
) -> None:
    sqlite_project.add_effect("first")

    for flags in (["-y"], ["--yes", "--debug"], ["--batch"], ["--no-input"], ["-y", "--json"]):
        result = sqlite_project.cdt(*command, *flags)
        assert result.returncode == 0, (flags, result.stderr)
        assert "goes with" not in result.stderr


def test_yes_still_answers_the_rollback_question(sqlite_project: Project) -> None:
    sqlite_project.add_effect("first")
    assert sqlite_project.cdt("-m", "-y").returncode == 0

    for spelling in ("--batch", "--no-input", "--noinput"):
        assert sqlite_project.cdt("-m").returncode == 0
        result = sqlite_project.cdt("-rm", spelling)
        assert result.returncode == 0, result.stderr
        assert sqlite_project.harness.records() == []


# 3. warnings about the folder come after the mode line, once


def _add_misnamed_migration(project: Project) -> None:
    """A file that defines a Migration under a name that is never run: warned about."""
    misnamed = project.migrations / "Migration_2024_misnamed.py"
    misnamed.write_text("raise SystemExit('never imported')\n\n\nclass Migration:\n    pass\n")


@pytest.mark.parametrize(
    "command",
    [["-m"], ["-lm"], ["-m", "--dry-run"], ["-rm", "-y"], ["--repair", "-y"]],
)
def test_folder_warnings_follow_the_mode_line_once(
    sqlite_project: Project, command: list[str]
) -> None:
    name = sqlite_project.add_effect("first").stem
    _add_misnamed_migration(sqlite_project)
    if command[0] != "-m":
        assert sqlite_project.cdt("-m").returncode == 0

    for _ in range(2):  # -m twice: the first has work, the second none
        lines = _merged(sqlite_project, *command).stdout.splitlines()
        warnings = [line for line in lines if "Migration_2024_misnamed.py is not run" in line]
        assert lines[0].startswith("Migration repository mode is: SQLITE"), lines
        assert len(warnings) == 1, lines
    if command == ["-m"]:
        assert sqlite_project.harness.records() == [name]


def test_folder_warnings_follow_the_mode_event_in_json(sqlite_project: Project) -> None:
    sqlite_project.add_effect("first")
    _add_misnamed_migration(sqlite_project)

    for _ in range(2):  # with work, then without (read without an event loop)
        events = _json_lines(sqlite_project.cdt("-m", "--json").stdout)
        assert [e["event"] for e in events[:2]] == ["repository_chosen", "warned"]
        assert sum(e["event"] == "warned" for e in events) == 1


# 6. messages name the option the user gave, and say what it did


def test_baseline_names_its_own_option_and_says_it_marked(sqlite_project: Project) -> None:
    names = [sqlite_project.add_effect(tag).stem for tag in ("one", "two")]

    unknown = sqlite_project.cdt("--baseline", "nope")
    baselined = sqlite_project.cdt("--baseline", names[0])
    baselined_json = sqlite_project.cdt("--baseline", names[1], "--json")

    assert unknown.returncode == 2
    assert "--baseline nope: no migration file of that name" in unknown.stderr
    assert "--to" not in unknown.stderr
    assert baselined.returncode == 0, baselined.stderr
    assert "Done: 1 marked as applied (not run)" in baselined.stdout
    assert " applied, " not in baselined.stdout
    finished = _json_lines(baselined_json.stdout)[-1]
    assert finished["event"] == "run_finished" and finished["baseline"] is True
    assert sqlite_project.harness.records() == names
    assert sqlite_project.harness.effects() == []


def test_to_and_rollback_messages_name_what_was_typed(sqlite_project: Project) -> None:
    sqlite_project.add_effect("one")
    assert sqlite_project.cdt("-m").returncode == 0

    migrate_to = sqlite_project.cdt("-m", "--to", "nope")
    rollback_to = sqlite_project.cdt("-rm", "--to", "nope")
    long_rollback = sqlite_project.cdt("--rollback")
    short_rollback = sqlite_project.cdt("-rm")

    assert "--to nope: no migration file of that name" in migrate_to.stderr
    assert "--to nope: that migration is not applied" in rollback_to.stderr
    assert "error: --rollback asks for confirmation" in long_rollback.stderr
    assert "error: -rm asks for confirmation" in short_rollback.stderr


# 7. -lm --check: the hint fixes what was found


def _check_error(project: Project) -> str:
    result = project.cdt("-lm", "--check")
    assert result.returncode == 1, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_check_hints_match_what_was_found(sqlite_project: Project) -> None:
    changed = sqlite_project.add_effect("changed")
    missing = sqlite_project.add_effect("missing")
    assert sqlite_project.cdt("-m").returncode == 0

    changed.write_text(changed.read_text() + "\n# edited after it was applied\n")
    only_changed = _check_error(sqlite_project)
    changed_text = changed.read_text()
    changed.write_text(changed_text.replace("\n# edited after it was applied\n", ""))
    missing_text = missing.read_text()
    missing.unlink()
    only_missing = _check_error(sqlite_project)
    missing.write_text(missing_text)
    sqlite_project.add_effect("pending")
    only_pending = _check_error(sqlite_project)

    assert "1 changed" in only_changed and "`cdt --repair`" in only_changed
    assert "cdt -m" not in only_changed
    assert "1 missing" in only_missing and "restore the missing files" in only_missing
    assert "cdt -m" not in only_missing and "--repair" not in only_missing
    assert "1 pending" in only_pending and "run `cdt -m`" in only_pending
    assert "--repair" not in only_pending and "restore" not in only_pending


# 8. a failed down() during -rm says the migration stays applied


def test_a_failed_down_says_the_migration_is_still_applied(sqlite_project: Project) -> None:
    source = sqlite_project.harness.effect_migration("kept").replace(
        "async def down(self) -> None:\n",
        "async def down(self) -> None:\n        raise KeyError('x')\n",
    )
    name = sqlite_project.add(source, "kept").stem
    assert "raise KeyError" in source
    assert sqlite_project.cdt("-m").returncode == 0

    result = sqlite_project.cdt("-rm", "-y")

    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert f"{name} failed in down()" in error
    assert "its record is kept, so it is still applied" in error
    assert "nothing of it was recorded" not in error
    assert sqlite_project.harness.records() == [name]
    assert f"{name}  applied" in sqlite_project.cdt("-lm").stdout


# 10. one text per error; every exported error in the documented tree


def test_str_of_an_error_is_its_message_down_error_included() -> None:
    failure = MigrationFailed("m failed in up(): RuntimeError: boom", "fix it")
    failure.add_down_error("KeyError: 'x'")

    assert str(failure) == failure.message
    assert "down() then failed too: KeyError: 'x'" in str(failure)
    assert failure.one_line() == f"{failure}; fix it"
    assert failure.args == (failure.message,)


def test_str_of_a_failed_migration_from_the_api_names_both_errors(
    sqlite_project: Project,
) -> None:
    source = sqlite_project.harness.effect_migration("both", fail=True).replace(
        "async def down(self) -> None:\n",
        "async def down(self) -> None:\n        raise KeyError('down too')\n",
    )
    sqlite_project.add(source, "both")

    with pytest.raises(MigrationFailed) as caught:
        asyncio.run(
            clandestino.migrate(
                migrations_dir=sqlite_project.migrations,
                url=str(sqlite_project.harness.path),
                cwd=sqlite_project.root,
            )
        )

    assert "down() then failed too: KeyError" in str(caught.value)
    assert str(caught.value) == caught.value.message


_TREE_LINE = re.compile(r"^[\s│├└─]*(\w+)\s+exit (\d+)", re.MULTILINE)


def test_every_exported_error_is_in_the_documented_tree_with_its_exit_code() -> None:
    documented = {
        name: int(code) for name, code in _TREE_LINE.findall(clandestino.errors.__doc__ or "")
    }
    exported = {
        name: getattr(module, name)
        for module in (clandestino, clandestino.errors)
        for name in module.__all__
        if inspect.isclass(getattr(module, name)) and issubclass(getattr(module, name), Exception)
    }

    assert exported, "no exception exported"
    assert set(exported) == set(documented)
    for name, cls in exported.items():
        assert issubclass(cls, ClandestinoError)
        assert cls.exit_code == documented[name], name


# 11. a bug in the tool exits 70, not 1


BUGGY_PLUGIN = textwrap.dedent(
    """\
    from clandestino.backends import Backend


    def _create_store(settings, read_only):
        from clandestino_sqlite.store import SqliteStore

        class BuggyStore(SqliteStore):
            async def applied(self):
                raise LookupError("a bug in the backend's own code")

        store = BuggyStore(settings.cwd / "buggy.db", "buggy_records", read_only)
        store.description = "BUGGY (buggy.db)"
        return store


    backend = Backend(
        name="buggy",
        url_setting="BUGGY_PATH",
        template_module="buggy_backend",
        create_store=_create_store,
    )
    """
)


def test_an_internal_error_exits_70_not_1(sqlite_project: Project, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "buggy_backend.py").write_text(BUGGY_PLUGIN)
    info = site / "buggy_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: buggy-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[clandestino.backends]\nbuggy = buggy_backend:backend\n"
    )
    env = {"PYTHONPATH": str(site), "CLANDESTINO_MIGRATION_REPO": "buggy"}
    sqlite_project.add_effect("first")

    result = sqlite_project.cdt("-m", env=env)
    as_json = sqlite_project.cdt("-m", "--json", env=env)

    assert result.returncode == 70, result.stderr
    assert "unexpected LookupError: a bug in the backend's own code" in result.stderr
    assert "a bug in clandestino" in result.stderr
    assert as_json.returncode == 70
    assert "70 an internal" in " ".join(sqlite_project.cdt("-h").stdout.split())


# 12. no private standard-library API but the one, tested, in clandestino.digest

PACKAGES = ["clandestino", "clandestino_sqlite", "clandestino_postgres", "clandestino_mongo"]
PACKAGES += ["clandestino_elasticsearch"]
PRIVATE_ALLOWED_IN = {"clandestino/digest.py"}


def _sources() -> list[Path]:
    root = Path(clandestino.__file__).parent.parent
    return sorted(path for package in PACKAGES for path in (root / package).rglob("*.py"))


def test_no_private_standard_library_module_is_imported_outside_digest() -> None:
    root = Path(clandestino.__file__).parent.parent
    found = []
    for path in _sources():
        relative = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "__import__"
            ):
                names = ["<__import__>"]
            for name in names:
                private = name.startswith("_") and not name.startswith("__future__")
                if private and relative not in PRIVATE_ALLOWED_IN:
                    found.append(f"{relative}: {name}")
    assert found == []


def test_no_class_overrides_a_private_method_of_a_standard_library_base() -> None:
    root = Path(clandestino.__file__).parent.parent
    found = []
    for path in _sources():
        module_name = ".".join(path.relative_to(root).with_suffix("").parts)
        module_name = module_name.removesuffix(".__init__")
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a driver that is not installed here
            continue
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and cls.__module__ == module.__name__):
                continue
            for base in cls.__mro__[1:]:
                if base.__module__.split(".")[0] not in sys.stdlib_module_names:
                    continue
                for attribute, value in vars(cls).items():
                    single = attribute.startswith("_") and not attribute.startswith("__")
                    if single and inspect.isfunction(value) and attribute in vars(base):
                        found.append(f"{cls.__qualname__}.{attribute} overrides {base.__name__}'s")
    assert found == []


def test_the_checksum_digest_is_sha256_and_the_builtin_one_on_cpython() -> None:
    from clandestino.digest import sha256_function

    sha256 = sha256_function()

    for data in (b"", b"migration", bytes(range(256)) * 300):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    if sys.implementation.name == "cpython":
        # The point of the private use: OpenSSL stays unloaded. A Python that renames the module
        # again fails here rather than quietly paying for hashlib.
        assert sha256.__module__ in {"_sha2", "_sha256"}, sha256.__module__


def test_the_checksum_falls_back_to_hashlib_without_the_builtin_modules(tmp_path: Path) -> None:
    (tmp_path / "migration_2024_01_01_00_00_01_a.py").write_bytes(b"text\r\nmore\n")
    probe = textwrap.dedent(
        f"""\
        import sys
        sys.modules["_sha2"] = None
        sys.modules["_sha256"] = None
        from pathlib import Path
        from clandestino.digest import sha256_function
        from clandestino.discovery import discover
        print(sha256_function().__module__)
        print(discover(Path({str(tmp_path)!r}))[0].checksum)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    module, checksum = result.stdout.split()
    assert module in {"_hashlib", "hashlib"}
    assert checksum == hashlib.sha256(b"text\nmore\n").hexdigest()
