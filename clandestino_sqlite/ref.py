from clandestino_interfaces import AbstractMigration

from clandestino_sqlite.infra import SQLiteInfra


class Migration(AbstractMigration):
    infra = SQLiteInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_cursor() as cursor:
            # A sqlite3 cursor on the run's own connection: this migration and its record
            # commit together. Use ? placeholders: cursor.execute("... VALUES (?)", [value])
            cursor.execute("SELECT 1")

    async def down(self) -> None:
        """Undo modifications in database"""
