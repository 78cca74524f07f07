from clandestino_interfaces import AbstractMigration

from clandestino_sqlite.infra import SQLiteInfra


class Migration(AbstractMigration):
    infra = SQLiteInfra()

    async def up(self) -> None:
        """One account per e-mail address."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute("CREATE UNIQUE INDEX users_email ON users (email)")

    async def down(self) -> None:
        """Drop the index."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS users_email")
