"""Finding migration files, ordering and checksumming them, and importing one when it must run.

Discovery reads names and bytes only; no migration module is imported until the engine needs it.
Which files are migrations follows the original, which listed the folder with pkgutil.iter_modules
and ran every module whose name starts with "migration" (dashes and all). User files are imported
by path under unique module names; for the length of a run the migrations folder is also on
sys.path, as it was in the original, so a migration can `import helpers` from beside it.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from clandestino.digest import sha256_function
from clandestino.errors import ConfigurationError, MigrationFileError

if TYPE_CHECKING:
    from clandestino_interfaces import AbstractMigration

__all__ = [
    "MIGRATION_PREFIX",
    "MigrationFile",
    "check_folder",
    "discover",
    "import_user_file",
    "load_migration_class",
    "migrations_importable",
    "scan",
    "user_frame",
]

_sha256 = sha256_function()

# The original treated every module whose name starts with "migration" as a migration.
MIGRATION_PREFIX = "migration"


@dataclass(frozen=True)
class MigrationFile:
    """One migration on disk: its recorded name (the module name), path and content checksum."""

    name: str
    path: Path
    checksum: str


def discover(folder: Path) -> list[MigrationFile]:
    """Every migration in `folder`, in the order they apply (sorted by module name)."""
    return scan(folder)[0]


def scan(folder: Path) -> tuple[list[MigrationFile], list[Path]]:
    """The migrations in `folder` in the order they apply, and the stray .py files beside them
    (most likely a misnamed migration, which would silently never run): one pass, no stat per
    file, since a no-op run at every deploy lists the folder and little else."""
    check_folder(folder)
    try:
        with os.scandir(folder) as entries:
            found = [(entry.name, entry.is_file()) for entry in entries]
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read migrations folder {folder}: {exc.strerror}",
            "check the folder's permissions for the user running cdt",
        ) from exc
    migrations = [
        MigrationFile(name[:-3], path, _checksum(path))
        for name, is_file in found
        if is_file and _is_migration_name(name)
        for path in (folder / name,)
    ]
    migrations.sort(key=lambda migration: migration.name)
    strays = sorted(
        path
        for name, is_file in found
        if is_file
        and name.endswith(".py")
        and not _is_migration_name(name)
        and name not in _KNOWN_FILES
        for path in (folder / name,)
        if _looks_like_a_migration(path)
    )
    return migrations, strays


def check_folder(folder: Path) -> None:
    """The migrations folder must be a folder; say plainly what it is instead."""
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(
            f"migrations folder {folder} is not a folder",
            "point --dir / CLANDESTINO_MIGRATIONS_DIR at the folder of migration files",
        )
    if not folder.exists():
        raise ConfigurationError(
            f"migrations folder {folder} does not exist",
            "create one with `cdt -cm NAME`, or point --dir / CLANDESTINO_MIGRATIONS_DIR at it",
        )


# Files a migrations folder may hold besides migrations: the original's overrides.
_KNOWN_FILES = {"ref.py", "repository.py", "__init__.py"}


def _is_migration_name(name: str) -> bool:
    # What pkgutil.iter_modules yields for a source file: the stem, when it holds no dot (a dotted
    # stem is no module name). The stem need not be an identifier: the original imported
    # `migration_2024_..._add-users` by name through importlib, which takes any string.
    stem = name[:-3]
    return name.endswith(".py") and stem.startswith(MIGRATION_PREFIX) and "." not in stem


# A migration class at the top level of a file: a misnamed migration rather than a helper.
_MIGRATION_CLASS = re.compile(rb"^class\s+Migration\b", re.MULTILINE)


def _looks_like_a_migration(path: Path) -> bool:
    """Whether a .py file that is not run defines a Migration class: then it is most likely a
    misnamed migration, worth a warning; helper modules beside the migrations are not."""
    try:
        return _MIGRATION_CLASS.search(_read_bytes(path)) is not None
    except OSError:
        return True  # unreadable: say it is not run rather than hide it


def _checksum(path: Path) -> str:
    try:
        data = _read_bytes(path)
    except OSError as exc:
        raise MigrationFileError(f"cannot read {path}: {exc}", "check its permissions") from exc
    # Line endings are normalised so a checkout with CRLF does not count as a change.
    return _sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def _read_bytes(path: Path) -> bytes:
    # os.read rather than open(): the file object costs more than the read, a thousand times
    # over in a run.
    descriptor = os.open(os.fspath(path), os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(descriptor, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def import_user_file(path: Path, module_name: str) -> ModuleType:
    """Import a user's file by path, turning any failure into one MigrationFileError."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise MigrationFileError(f"cannot import {path}: not a Python source file")
    _check_encoding(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        where = f"{exc.filename or path}, line {exc.lineno}"
        raise MigrationFileError(
            f"{where}: syntax error: {exc.msg}", "fix the file, then run again"
        ) from exc
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise MigrationFileError(
            f"cannot import {user_frame(exc.__traceback__, path)}: {type(exc).__name__}: {exc}",
            _import_hint(exc, path),
        ) from exc
    return module


def _check_encoding(path: Path) -> None:
    """Python accepts bytes that are not UTF-8 in comments; a migration must be readable text."""
    import io
    import tokenize

    try:
        data = _read_bytes(path)
        if data.isascii():
            return  # every encoding Python reads source in agrees on ASCII: nothing to check
        try:
            encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        except SyntaxError:
            # Its first lines are not even UTF-8: the decoding below says where.
            encoding = "utf-8"
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MigrationFileError(
            f"{path}, line {line}: not valid {exc.encoding.upper()} (byte 0x{data[exc.start]:02x})",
            "save it as UTF-8, or declare its encoding in a `# -*- coding: ... -*-` line",
        ) from exc
    except (OSError, SyntaxError, LookupError) as exc:
        raise MigrationFileError(f"cannot read {path}: {exc}", "check the file") from exc


def _import_hint(exc: BaseException, path: Path) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"install the package that provides {exc.name!r}"
    return "fix the file, then run again"


@contextmanager
def migrations_importable(folder: Path) -> Iterator[None]:
    """The migrations folder on sys.path while the block runs, as the original had it for good:
    helper modules beside the migrations import by name. Afterwards the folder leaves sys.path
    and the helpers leave sys.modules, so a later run from another folder gets its own."""
    entry = os.fspath(folder.absolute())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with suppress(ValueError):  # a migration may have taken it off itself
            sys.path.remove(entry)
        inside = entry + os.sep
        for name, module in list(sys.modules.items()):
            origin = vars(module).get("__file__") if hasattr(module, "__dict__") else None
            if isinstance(origin, str) and origin.startswith(inside):
                del sys.modules[name]


def user_frame(tb: TracebackType | None, path: Path) -> str:
    """`file, line N` of the deepest frame inside `path`, or of the deepest frame at all."""
    deepest = None
    inside = None
    target = str(path)
    while tb is not None:
        deepest = tb
        if tb.tb_frame.f_code.co_filename == target:
            inside = tb
        tb = tb.tb_next
    chosen = inside or deepest
    if chosen is None:
        return str(path)
    return f"{chosen.tb_frame.f_code.co_filename}, line {chosen.tb_lineno}"


def load_migration_class(migration: MigrationFile) -> type[AbstractMigration]:
    """Import one migration file and check that it defines a usable Migration class."""
    from clandestino_interfaces import AbstractMigration

    module_name = f"_clandestino_migration_{migration.name}_{migration.checksum[:12]}"
    module = import_user_file(migration.path, module_name)
    cls = getattr(module, "Migration", None)
    if cls is not None and not inspect.isclass(cls):
        raise MigrationFileError(
            f"{migration.path}: Migration is not a class",
            "define `class Migration(AbstractMigration)` with async up() and down()",
        )
    if cls is None:
        raise MigrationFileError(
            f"{migration.path}: no Migration class",
            "define `class Migration(AbstractMigration)` with async up() and down()",
        )
    if not issubclass(cls, AbstractMigration):
        raise MigrationFileError(
            f"{migration.path}, line {_line_of(cls)}: Migration is not an AbstractMigration",
            "subclass clandestino_interfaces.AbstractMigration",
        )
    for method in ("up", "down"):
        function = getattr(cls, method, None)
        if not inspect.iscoroutinefunction(function):
            raise MigrationFileError(
                f"{migration.path}, line {_line_of(function or cls)}: "
                f"Migration.{method} is not an async function",
                f"declare it as `async def {method}(self) -> None`",
            )
    if inspect.isabstract(cls):
        raise MigrationFileError(
            f"{migration.path}, line {_line_of(cls)}: Migration leaves "
            f"{', '.join(sorted(getattr(cls, '__abstractmethods__', ())))} abstract",
            "define both async up() and async down()",
        )
    return cls


def _line_of(obj: object) -> int | str:
    try:
        return inspect.getsourcelines(obj)[1]  # type: ignore[arg-type]
    except (OSError, TypeError):
        return "?"
