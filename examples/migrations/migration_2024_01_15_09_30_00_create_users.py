from clandestino_interfaces import AbstractMigration

from clandestino_sqlite.infra import SQLiteInfra


class Migration(AbstractMigration):
    infra = SQLiteInfra()

    async def up(self) -> None:
        """Create the users table."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute(
                "CREATE TABLE users ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " email TEXT NOT NULL,"
                " name TEXT NOT NULL,"
                " created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )

    async def down(self) -> None:
        """Drop the users table."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS users")
