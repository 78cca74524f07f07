from clandestino_interfaces import AbstractMigration

from clandestino_sqlite.infra import SQLiteInfra

ADMIN_EMAIL = "admin@example.com"


class Migration(AbstractMigration):
    infra = SQLiteInfra()

    async def up(self) -> None:
        """Insert the first user. Values go in as ? parameters, never into the SQL text."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (email, name) VALUES (?, ?)", [ADMIN_EMAIL, "Administrator"]
            )

    async def down(self) -> None:
        """Remove that user again."""
        async with self.infra.get_cursor() as cursor:
            cursor.execute("DELETE FROM users WHERE email = ?", [ADMIN_EMAIL])
