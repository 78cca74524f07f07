"""What only MongoDB has: the original's documents and Motor-style files, the unique index and
the original's duplicates, transactions through the infra's session, the lease lock's holder,
and connection errors."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Project, ServerFolders
from tests.harness import MongoHarness

ROOT_USER = ("admin", "s3cr:t@pass/")


@pytest.fixture
def mongo(tmp_path: Path, mongo_url: str) -> Iterator[Project]:
    harness = MongoHarness(tmp_path / "backend", mongo_url)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


@pytest.fixture(scope="session")
def mongo_auth_url(server_folders: ServerFolders) -> Iterator[str]:
    """A second server that refuses clients without the root user's password."""
    import os

    from tests.servers.mongo import TEST_URL, mongo_server

    if os.environ.get(TEST_URL):
        pytest.skip("authentication is tested on the server the suite starts itself")
    with mongo_server(server_folders.make("mongo-auth"), root_user=ROOT_USER) as url:
        yield url


def _harness(project: Project) -> MongoHarness:
    assert isinstance(project.harness, MongoHarness)
    return project.harness


def test_a_new_collection_gets_the_init_document_and_a_unique_index(mongo: Project) -> None:
    mongo.add_effect("x")

    assert mongo.cdt("-m").returncode == 0

    collection = _harness(mongo).database.clandestino
    assert collection.find_one({"name": "clandestino init"}) is not None
    indexes = collection.index_information().values()
    assert any(index["key"] == [("name", 1)] and index.get("unique") for index in indexes)


def test_the_originals_duplicate_records_are_reported_not_fatal(mongo: Project) -> None:
    twice = mongo.add_effect("twice").stem
    later = mongo.add_effect("later").stem
    _harness(mongo).write_original_control([twice, twice])

    result = mongo.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert f"{twice} is recorded 2 times" in result.stderr
    assert _harness(mongo).effects() == ["later"]
    assert later in _harness(mongo).records()


MOTOR_STYLE_FILE = textwrap.dedent(
    """\
    from clandestino_interfaces import AbstractMigration
    from clandestino_mongo.infra import MongoInfra


    class Migration(AbstractMigration):

        infra = MongoInfra()

        async def up(self) -> None:
            \"\"\"Do modifications in database\"\"\"
            async with self.infra.get_database() as database:
                await database.things.insert_many([{"n": 1}, {"n": 2}])
                found = await database.things.find({}, {"_id": 0}).to_list(length=None)
                assert sorted(doc["n"] for doc in found) == [1, 2]
                await database.things.create_index("n")

        async def down(self) -> None:
            \"\"\"Undo modifications in database\"\"\"
            async with self.infra.get_database() as database:
                await database.things.drop()
    """
)


def test_a_file_generated_by_the_original_runs_unchanged(mongo: Project) -> None:
    mongo.add(MOTOR_STYLE_FILE, "motor_style")

    result = mongo.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert _harness(mongo).database.things.count_documents({}) == 2
    assert mongo.cdt("-rm", "-y").returncode == 0
    assert "things" not in _harness(mongo).database.list_collection_names()


SESSION_FILE = textwrap.dedent(
    """\
    from clandestino_interfaces import AbstractMigration
    from clandestino_mongo.infra import MongoInfra


    class Migration(AbstractMigration):
        infra = MongoInfra()

        async def up(self) -> None:
            async with self.infra.get_database() as db:
                await db.inside.insert_one({"n": 1}, session=self.infra.session)
                await db.outside.insert_one({"n": 1})
                raise RuntimeError("after both writes")

        async def down(self) -> None:
            pass
    """
)


def test_writes_through_the_session_roll_back_with_the_migration(mongo: Project) -> None:
    name = mongo.add(SESSION_FILE, "half").stem

    result = mongo.cdt("-m")

    assert result.returncode == 1
    database = _harness(mongo).database
    assert database.inside.count_documents({}) == 0
    assert database.outside.count_documents({}) == 1
    assert name not in _harness(mongo).records()
    assert database.clandestino.count_documents({"name": name}) == 0


def test_a_held_lock_names_its_holder_and_times_out(mongo: Project) -> None:
    mongo.add_effect("blocked")
    now = datetime.now(UTC)
    _harness(mongo).database.clandestino_lock.insert_one(
        {
            "_id": "migration-lock",
            "owner": "ci-runner-7/4242",
            "token": "theirs",
            "since": now,
            "until": now + timedelta(minutes=5),
        }
    )

    result = mongo.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "1"})

    assert result.returncode == 3
    assert "waiting for the lock held by ci-runner-7/4242 since" in result.stdout
    assert "stayed held by ci-runner-7/4242 for more than 1 s" in result.stderr
    assert _harness(mongo).effects() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://127.0.0.1:27017", "names no database"),
        ("mongodb://127.0.0.1:27017/", "names no database"),
        ("postgres://127.0.0.1/db", "must start with mongodb:// or mongodb+srv://"),
    ],
)
def test_a_url_without_a_database_or_of_another_kind_is_exit_2(
    mongo: Project, url: str, message: str
) -> None:
    mongo.add_effect("x")

    result = mongo.cdt("-m", env={"CLANDESTINO_MONGO_CONNECTION_STRING": url})

    assert result.returncode == 2
    assert message in result.stderr


def test_an_unreachable_server_is_exit_3_within_the_timeout(mongo: Project) -> None:
    mongo.add_effect("x")
    started = time.monotonic()

    result = mongo.cdt(
        "-m",
        env={
            "CLANDESTINO_MONGO_CONNECTION_STRING": "mongodb://u:hidden@127.0.0.1:9/db",
            "CLANDESTINO_CONNECT_TIMEOUT": "2",
        },
    )

    assert result.returncode == 3
    assert time.monotonic() - started < 15
    assert "cannot connect to MongoDB at 127.0.0.1:9/db within 2 s" in result.stderr
    assert "hidden" not in result.stdout + result.stderr


def test_a_wrong_password_is_exit_3_and_the_right_one_works(
    mongo: Project, mongo_auth_url: str
) -> None:
    from urllib.parse import quote

    mongo.add_effect("x")
    host = mongo_auth_url.removeprefix("mongodb://")
    user, password = ROOT_USER

    def url(secret: str) -> str:
        return f"mongodb://{user}:{quote(secret, safe='')}@{host}/authdb?authSource=admin"

    wrong = mongo.cdt("-m", env={"CLANDESTINO_MONGO_CONNECTION_STRING": url("not-it")})
    right = mongo.cdt("-lm", env={"CLANDESTINO_MONGO_CONNECTION_STRING": url(password)})

    assert wrong.returncode == 3
    assert "refused the credentials" in wrong.stderr
    assert "not-it" not in wrong.stdout + wrong.stderr
    assert right.returncode == 0, right.stderr
    assert password not in right.stdout + right.stderr
