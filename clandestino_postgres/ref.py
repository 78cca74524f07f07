from clandestino_interfaces import AbstractMigration

from clandestino_postgres.infra import PostgresInfra


class Migration(AbstractMigration):
    infra = PostgresInfra()
    # transactional = False  # for statements that cannot run in a transaction, such as
    #                        # CREATE INDEX CONCURRENTLY (a crash can then leave it half-done)

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.connection() as conn:
            # conn is the run's asyncpg connection, inside this migration's transaction: what
            # you do here and the migration's record commit together, or roll back together.
            await conn.execute("SELECT 1")

    async def down(self) -> None:
        """Undo modifications in database"""
