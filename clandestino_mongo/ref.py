from clandestino_interfaces import AbstractMigration

from clandestino_mongo.infra import MongoInfra


class Migration(AbstractMigration):
    infra = MongoInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_database() as db:
            # db is the run's database (the connection string's default one). Pass
            # session=self.infra.session to each write so that, on a replica set, it commits
            # together with this migration's record; elsewhere the session is None.
            await db.command("ping", session=self.infra.session)

    async def down(self) -> None:
        """Undo modifications in database"""
