from clandestino_interfaces import AbstractMigration

from clandestino_minio.infra import MinioInfra


class Migration(AbstractMigration):
    infra = MinioInfra()

    async def up(self) -> None:
        """Do modifications in database"""
        async with self.infra.get_client() as client:
            # client is the run's miniopy_async.Minio, e.g.
            # await client.put_object("my-bucket", "key", io.BytesIO(b"data"), 4)
            await client.list_buckets()

    async def down(self) -> None:
        """Undo modifications in database"""
