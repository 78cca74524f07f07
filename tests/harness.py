"""What the backend contract suite needs from each backend under test.

A harness gives the settings for a fresh, isolated database, writes migrations whose effect can be
counted in that database, and reads back the effects and the control records directly, without
going through Clandestino. Every backend adds one harness to BACKENDS and runs the same tests.
"""

from __future__ import annotations

import sqlite3
import textwrap
from abc import ABC, abstractmethod
from pathlib import Path

__all__ = ["BACKENDS", "BackendHarness", "SqliteHarness"]


class BackendHarness(ABC):
    name: str
    # How many `cdt -m` processes the concurrency test starts at once.
    concurrent_deployers = 20

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Settings that point `cdt` at this harness's database."""

    @abstractmethod
    def effect_migration(
        self,
        tag: str,
        *,
        fail: bool = False,
        sleep: float = 0.0,
        down_marker: Path | None = None,
    ) -> str:
        """Source of a migration whose up() adds `tag` to the effects and whose down() removes it.

        fail: up() raises after adding the effect; sleep: the first time up() runs, it touches
        started_marker(tag) after adding the effect, then waits;
        down_marker: down() writes this file first, to prove it ran.
        """

    def started_marker(self, tag: str) -> Path:
        """The file a sleeping migration touches once its effect is written, before it sleeps."""
        return self.workdir / f"{tag}.started"

    @abstractmethod
    def effects(self) -> list[str]:
        """Every tag present in the database, duplicates included."""

    @abstractmethod
    def records(self) -> list[str]:
        """The migration names in the control records, in the order they were written."""

    @abstractmethod
    def control_exists(self) -> bool:
        """Whether the control table / collection / index exists at all."""

    @abstractmethod
    def write_original_control(self, names: list[str]) -> None:
        """Create the control records exactly as the original tool would have, for `names`."""

    def cleanup(self) -> None:
        return None


def _marker_line(down_marker: Path | None) -> str:
    if down_marker is None:
        return ""
    return f"Path({str(down_marker)!r}).write_text('down called')"


class SqliteHarness(BackendHarness):
    name = "sqlite"
    concurrent_deployers = 10

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.path = workdir / "control.db"

    def env(self) -> dict[str, str]:
        return {"CLANDESTINO_SQLITE_DB_PATH": str(self.path)}

    def effect_migration(
        self,
        tag: str,
        *,
        fail: bool = False,
        sleep: float = 0.0,
        down_marker: Path | None = None,
    ) -> str:
        body = textwrap.dedent(
            f"""\
            import asyncio
            from pathlib import Path

            from clandestino_interfaces import AbstractMigration
            from clandestino_sqlite.infra import SQLiteInfra


            class Migration(AbstractMigration):
                infra = SQLiteInfra()

                async def up(self) -> None:
                    async with self.infra.get_cursor() as cursor:
                        cursor.execute("CREATE TABLE IF NOT EXISTS effects (tag TEXT)")
                        cursor.execute("INSERT INTO effects (tag) VALUES (?)", [{tag!r}])
                        started = Path({str(self.started_marker(tag))!r})
                        if {sleep!r} and not started.exists():
                            started.touch()
                            await asyncio.sleep({sleep!r})
                        if {fail!r}:
                            raise RuntimeError("boom in {tag}")

                async def down(self) -> None:
                    {_marker_line(down_marker) or "pass"}
                    async with self.infra.get_cursor() as cursor:
                        cursor.execute("DELETE FROM effects WHERE tag = ?", [{tag!r}])
            """
        )
        return body

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(self.path)
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            connection.close()

    def effects(self) -> list[str]:
        return [str(row[0]) for row in self._query("SELECT tag FROM effects ORDER BY rowid")]

    def records(self) -> list[str]:
        rows = self._query("SELECT migration_name FROM clandestino ORDER BY id")
        return [str(row[0]) for row in rows]

    def control_exists(self) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'clandestino'"))

    def write_original_control(self, names: list[str]) -> None:
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute(
                """
                CREATE TABLE IF NOT EXISTS clandestino (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    migration_name TEXT UNIQUE NOT NULL,
                    created_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                )
                """
            )
            connection.executemany(
                "INSERT INTO clandestino (migration_name) VALUES (?)", [[n] for n in names]
            )
        connection.close()


BACKENDS: list[type[BackendHarness]] = [SqliteHarness]
