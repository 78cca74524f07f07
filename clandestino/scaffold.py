"""Writing a new migration file from a template (`cdt -cm name [type]`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path

from clandestino.discovery import check_folder
from clandestino.errors import ConfigurationError, UsageError

__all__ = ["CreatedMigration", "create_migration_file", "migration_file_name"]

_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")
_STAMP_FORMAT = "%Y_%m_%d_%H_%M_%S"
_STAMPED = re.compile(r"migration_(\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2})_")
_EMPTY_TEMPLATE = Path(__file__).with_name("templates") / "empty.py"


@dataclass(frozen=True)
class CreatedMigration:
    path: Path
    template: str
    created_folder: bool


def create_migration_file(
    folder: Path, name: str, template: str | None, now: datetime | None = None
) -> CreatedMigration:
    """Write `migration_<UTC stamp>_<name>.py` into `folder`, creating the folder if needed."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"migration name {name!r} is not allowed",
            "use letters, digits and underscores only (at most 100)",
        )
    if folder.exists() and not folder.is_dir():
        check_folder(folder)
    source = _template_path(folder, template)
    label = "ref.py" if source == folder / "ref.py" else (template or "empty")
    created_folder = not folder.exists()
    path = folder / migration_file_name(folder, name, now or datetime.now(UTC))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as out:
            out.write(source.read_text(encoding="utf-8"))
    except FileExistsError as exc:
        raise UsageError(f"{path} already exists", "choose another name") from exc
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write {path}: {exc.strerror}", "check the folder and its permissions"
        ) from exc
    return CreatedMigration(path, label, created_folder)


def migration_file_name(folder: Path, name: str, now: datetime) -> str:
    """The original's pattern, with a stamp later than any file already there, so that two
    files created in the same second still sort in the order they were made."""
    stamp = now.replace(microsecond=0)
    latest = _latest_stamp(folder)
    if latest is not None and stamp <= latest:
        stamp = latest + timedelta(seconds=1)
    return f"migration_{stamp.strftime(_STAMP_FORMAT)}_{name}.py"


def _latest_stamp(folder: Path) -> datetime | None:
    if not folder.is_dir():
        return None
    stamps = [
        stamp
        for path in folder.glob("migration_*.py")
        if (match := _STAMPED.match(path.name)) and (stamp := _parse_stamp(match.group(1)))
    ]
    return max(stamps, default=None)


def _parse_stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _template_path(folder: Path, template: str | None) -> Path:
    # As in the original, a ref.py in the migrations folder wins over any type.
    local = folder / "ref.py"
    if local.is_file():
        return local
    if not template:
        return _EMPTY_TEMPLATE
    from clandestino.backends import load_backend

    module = load_backend(template, source="migration type ").template_module
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"the {template} backend has no template module {module}")
    return Path(spec.origin)
