"""The original package's five-method repository, kept for code that calls it directly.

The engine does not use it: it reads every record in one listing through `MinioStore`, and hands
migrations a view of the run's own store as `migration_repository`. This one opens a client per
call, as the original did, but closes it.
"""

from __future__ import annotations

import io

from clandestino_interfaces import IMigrateRepository

from clandestino_minio.infra import MinioInfra

__all__ = ["MinIOMigrateRepository"]


class MinIOMigrateRepository(IMigrateRepository):  # type: ignore[misc]
    @classmethod
    def get_control_bucket(cls) -> str:
        return "clandestino"

    @classmethod
    async def create_control_table(cls) -> None:
        async with MinioInfra().get_client() as client:
            await client.make_bucket(cls.get_control_bucket())

    @classmethod
    async def control_table_exists(cls) -> bool:
        async with MinioInfra().get_client() as client:
            return bool(await client.bucket_exists(cls.get_control_bucket()))

    @classmethod
    async def register_migration_execution(cls, migration_name: str) -> None:
        async with MinioInfra().get_client() as client:
            await client.put_object(cls.get_control_bucket(), migration_name, io.BytesIO(b"1"), 1)

    @classmethod
    async def remove_migration_execution(cls, migration_name: str) -> None:
        async with MinioInfra().get_client() as client:
            await client.remove_object(cls.get_control_bucket(), migration_name)

    @classmethod
    async def migration_already_executed(cls, migration_name: str) -> bool:
        from miniopy_async.error import S3Error

        async with MinioInfra().get_client() as client:
            try:
                await client.stat_object(cls.get_control_bucket(), migration_name)
            except S3Error:
                return False
            return True
