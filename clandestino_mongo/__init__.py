"""The MongoDB backend on PyMongo's own asyncio API (`pymongo.AsyncMongoClient`).

The public names are the original `clandestino-mongo` package's, so migration files it generated
(`async with self.infra.get_database() as db`) keep working. Importing this package does not
import pymongo; using it does.
"""

from clandestino_mongo import ref
from clandestino_mongo.infra import MongoInfra
from clandestino_mongo.repository import MongoMigrateRepository

__all__ = ["MongoInfra", "MongoMigrateRepository", "ref"]
