"""The lease lock on MongoDB and Elasticsearch, on the real servers: fencing, clocks that disagree,
a migration that blocks the event loop, and many deployers held at a barrier.

Each test runs on every backend whose lock is a lease (`lease_project`)."""

from __future__ import annotations

import subprocess
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.harness import ElasticsearchHarness, MinioHarness, MongoHarness, OpenSearchHarness
from tests.interruptions import error_lines

# A clock far enough off that, judged by it, any lease of these tests would have run out.
SKEW_SECONDS = 3600


def _skew(project: Project) -> int:
    """S3 servers refuse a request signed more than 15 minutes off their clock (MinIO says
    RequestTimeTooSkewed, exit 3): ten minutes, still a hundred leases, for MinIO."""
    return 600 if isinstance(project.harness, MinioHarness) else SKEW_SECONDS


SKEWED_CLOCK = textwrap.dedent(
    """\
    # Loaded at start-up through PYTHONPATH: this process's wall clock is CLOCK_SKEW seconds off.
    import datetime as _datetime
    import os as _os
    import time as _time

    _skew = float(_os.environ["CLOCK_SKEW"])
    _real_time, _real_time_ns = _time.time, _time.time_ns
    _time.time = lambda: _real_time() + _skew
    _time.time_ns = lambda: _real_time_ns() + int(_skew * 1e9)


    class _SkewedDatetime(_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return super().now(tz) + _datetime.timedelta(seconds=_skew)

        @classmethod
        def utcnow(cls):
            return super().utcnow() + _datetime.timedelta(seconds=_skew)


    _datetime.datetime = _SkewedDatetime
    """
)


def _barrier_migration(go: Path, arrived: Path) -> str:
    """A migration that says it arrived, then waits (without blocking the loop) for `go`."""
    return textwrap.dedent(
        f"""\
        import asyncio
        from pathlib import Path

        from clandestino_interfaces import AbstractMigration


        class Migration(AbstractMigration):
            async def up(self) -> None:
                Path({str(arrived)!r}).touch()
                while not Path({str(go)!r}).exists():
                    await asyncio.sleep(0.05)

            async def down(self) -> None:
                pass
        """
    )


def _blocking_migration(arrived: Path, seconds: float, effect_source: str) -> str:
    """The effect migration `effect_source`, whose up() then blocks the event loop."""
    return effect_source.replace(
        "    async def up(self) -> None:\n",
        "    async def up(self) -> None:\n"
        f"        Path({str(arrived)!r}).touch()\n"
        f"        time.sleep({seconds!r})\n",
    )


def _wait_for(path: Path, run: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _take_the_lock_over(project: Project) -> None:
    """What a second deployer's takeover leaves in the database: the lock is someone else's."""
    harness = project.harness
    if isinstance(harness, MongoHarness):
        locks = harness.database.clandestino_lock
        current = locks.find_one({"_id": "migration-lock"})
        assert current is not None and current["token"], current
        epoch = current["epoch"] + 1
        until = datetime.now(UTC) + timedelta(minutes=5)
        locks.update_one(
            {"_id": "migration-lock"},
            {"$set": {"owner": "intruder/1", "token": "intruder", "epoch": epoch, "until": until}},
        )
        locks.update_one({"_id": "migration-fence"}, {"$set": {"epoch": epoch}})
        return
    if isinstance(harness, MinioHarness):
        # The intruder's lease, then its stamp on the records object (what its fence writes).
        harness.put_json(".clandestino/lock.json", _minio_lock("intruder/1", "intruder", 300))
        records = harness.get_json(".clandestino/records.json")
        assert records is not None and records["holder"], records
        harness.put_json(
            ".clandestino/records.json",
            {**records, "holder": "intruder", "seq": records["seq"] + 1},
        )
        return
    assert isinstance(harness, ElasticsearchHarness | OpenSearchHarness)
    index = f"{harness.control}_lock"
    current = harness.client.get(index=index, id="migration-lock")["_source"]
    _put(harness, index, "migration-lock", {**current, "owner": "intruder/1", "token": "intruder"})


def _put(harness: ElasticsearchHarness | OpenSearchHarness, index: str, id: str, doc: Any) -> None:
    """Index a document with the harness's own client (opensearch-py takes it as the body)."""
    if isinstance(harness, OpenSearchHarness):
        harness.client.index(index=index, id=id, body=doc, refresh=True)
    else:
        harness.client.index(index=index, id=id, document=doc, refresh=True)


def test_a_holder_whose_lock_was_taken_over_records_nothing_and_exits_3(
    lease_project: Project,
) -> None:
    # The lock changes hands while the holder's loop is blocked in up(); the next renewal is
    # a quarter lease away, after up() has ended: only the record write's fence can stop it.
    project = lease_project
    first = project.add_effect("first").stem
    arrived = project.harness.workdir / "arrived"
    source = project.harness.effect_migration("late")
    late = project.add(_blocking_migration(arrived, 2, source), "late").stem
    run = project.start("-m", env={"CLANDESTINO_LOCK_LEASE": "60"})
    _wait_for(arrived, run)

    _take_the_lock_over(project)
    out, err = run.communicate(timeout=60)

    assert run.returncode == 3, (out, err)
    errors = error_lines(err)
    assert len(errors) == 1 and "another deployer took it over" in errors[0], err
    assert "Traceback" not in out + err
    assert project.harness.records() == [first]
    assert late not in project.harness.records()


def test_a_waiter_whose_clock_is_an_hour_ahead_does_not_take_a_live_lock(
    lease_project: Project, tmp_path: Path
) -> None:
    project = lease_project
    project.add_effect("slow", sleep=15)
    hook = tmp_path / "skew"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SKEWED_CLOCK)
    holder = project.start("-m", env={"CLANDESTINO_LOCK_LEASE": "5"})
    _wait_for(project.harness.started_marker("slow"), holder)

    skewed = project.cdt(
        "-m",
        env={
            "CLANDESTINO_LOCK_LEASE": "5",
            "CLANDESTINO_LOCK_TIMEOUT": "7",
            "PYTHONPATH": str(hook),
            "CLOCK_SKEW": str(_skew(project)),
        },
    )
    _, holder_err = holder.communicate(timeout=60)

    assert skewed.returncode == 3, skewed.stderr
    assert "waiting for the lock held by" in skewed.stdout
    assert "took the lock over" not in skewed.stderr
    assert holder.returncode == 0, holder_err
    assert project.harness.effects() == ["slow"]


def test_a_holder_whose_clock_is_an_hour_behind_keeps_its_lock(
    lease_project: Project, tmp_path: Path
) -> None:
    project = lease_project
    project.add_effect("slow", sleep=15)
    hook = tmp_path / "skew"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SKEWED_CLOCK)
    holder = project.start(
        "-m",
        env={
            "CLANDESTINO_LOCK_LEASE": "5",
            "PYTHONPATH": str(hook),
            "CLOCK_SKEW": str(-_skew(project)),
        },
    )
    _wait_for(project.harness.started_marker("slow"), holder)

    waiter = project.cdt("-m", env={"CLANDESTINO_LOCK_LEASE": "5", "CLANDESTINO_LOCK_TIMEOUT": "7"})
    _, holder_err = holder.communicate(timeout=60)

    assert waiter.returncode == 3, waiter.stderr
    assert "took the lock over" not in waiter.stderr
    assert holder.returncode == 0, holder_err
    assert project.harness.effects() == ["slow"]


def test_a_migration_blocking_the_loop_longer_than_the_lease_keeps_the_lock(
    lease_project: Project,
) -> None:
    project = lease_project
    arrived = project.harness.workdir / "arrived"
    source = project.harness.effect_migration("blocking")
    name = project.add(_blocking_migration(arrived, 12, source), "blocking").stem
    settings = {"CLANDESTINO_LOCK_LEASE": "4", "CLANDESTINO_LOCK_TIMEOUT": "60"}
    holder = project.start("-m", env=settings)
    _wait_for(arrived, holder)

    second = project.cdt("-m", env=settings)
    _, holder_err = holder.communicate(timeout=60)

    assert holder.returncode == 0, holder_err
    assert second.returncode == 0, second.stderr
    assert "waiting for the lock held by" in second.stdout
    assert "took the lock over" not in second.stderr
    assert "never finished" not in second.stderr and "--repair" not in second.stderr
    assert project.harness.effects() == ["blocking"]
    assert project.harness.records() == [name]


def _leave_a_dead_holders_lock(project: Project) -> None:
    """A lock whose holder died long ago: the deployers race to take it over."""
    harness = project.harness
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    if isinstance(harness, MongoHarness):
        harness.database.clandestino_lock.insert_one(
            {"_id": "migration-lock", "owner": "dead/1", "token": "dead", "epoch": 1}
            | {"since": long_ago, "until": long_ago}
        )
        return
    if isinstance(harness, MinioHarness):
        # The server dates the object now; a negative lease makes it expired already.
        harness.put_json(".clandestino/lock.json", _minio_lock("dead/1", "dead", -1))
        return
    assert isinstance(harness, ElasticsearchHarness | OpenSearchHarness)
    _put(
        harness,
        f"{harness.control}_lock",
        "migration-lock",
        {"owner": "dead/1", "token": "dead", "since": long_ago.isoformat()}
        | {"until_ms": int(long_ago.timestamp() * 1000)},
    )


@pytest.mark.parametrize("left_by_the_dead", [False, True], ids=["free", "dead_holder"])
def test_many_deployers_held_at_a_barrier_wait_and_apply_each_migration_once(
    lease_project: Project, left_by_the_dead: bool
) -> None:
    project = lease_project
    if left_by_the_dead:
        _leave_a_dead_holders_lock(project)
    workdir = project.harness.workdir
    go, arrived = workdir / "go", workdir / "arrived"
    names = [project.add(_barrier_migration(go, arrived), "barrier").stem]
    tags = [f"m{index}" for index in range(5)]
    names += [project.add_effect(tag).stem for tag in tags]
    count = 6
    runs = [project.start("-m", env={"PYTHONUNBUFFERED": "1"}) for _ in range(count)]
    outputs: list[list[str]] = [[] for _ in runs]
    readers = [
        threading.Thread(target=_collect, args=(run, out))
        for run, out in zip(runs, outputs, strict=True)
    ]
    for reader in readers:
        reader.start()

    # Every deployer is at the lock before any migration may go on: one holds it at the
    # barrier, all the others say they wait.
    deadline = time.monotonic() + 120
    while not (arrived.exists() and _waiting(outputs) == count - 1):
        assert time.monotonic() < deadline, (arrived.exists(), outputs)
        assert all(run.poll() is None for run in runs), [run.communicate() for run in runs]
        time.sleep(0.1)
    go.touch()
    codes = [run.wait(timeout=180) for run in runs]
    for reader in readers:
        reader.join(timeout=30)

    errors = [run.stderr.read() if run.stderr else "" for run in runs]
    assert codes == [0] * count, errors
    assert _waiting(outputs) == count - 1
    took_over = sum("took the lock over from dead/1" in error for error in errors)
    assert took_over == (1 if left_by_the_dead else 0), errors
    assert sorted(project.harness.effects()) == tags
    assert project.harness.records() == names


def _collect(run: subprocess.Popen[str], lines: list[str]) -> None:
    assert run.stdout is not None
    lines.extend(iter(run.stdout.readline, ""))


def _waiting(outputs: list[list[str]]) -> int:
    return sum(any("waiting for the lock held by" in line for line in out) for out in outputs)


def test_the_lock_collection_or_index_keeps_no_lease_after_a_run(lease_project: Project) -> None:
    """A finished run gives its lock up at once: the next run neither waits nor takes over."""
    project = lease_project
    project.add_effect("one")
    assert project.cdt("-m").returncode == 0
    project.add_effect("two")

    started = time.monotonic()
    again = project.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "5"})

    assert again.returncode == 0, again.stderr
    assert "waiting for the lock" not in again.stdout
    assert "took the lock over" not in again.stderr
    assert time.monotonic() - started < 30


def test_of_two_waiters_that_read_the_same_expired_lease_only_one_takes_it_over(
    lease_project: Project,
) -> None:
    """The compare-and-set itself, on the real server: both waiters read the dead holder's
    lease, both try to take it over; the second one's version is stale and it must fail."""
    import asyncio

    project = lease_project
    _leave_a_dead_holders_lock(project)

    async def race() -> tuple[bool, bool]:
        store, document = _store_and_lease(project)
        await store.open()
        try:
            first_read, second_read = await document.read(), await document.read()
            assert first_read is not None and second_read is not None
            first = await document.take_over(first_read, "one/1", "one")
            second = await document.take_over(second_read, "two/2", "two")
            return first is not None, second is not None
        finally:
            await store.aclose()

    assert asyncio.run(race()) == (True, False)


def _store_and_lease(project: Project) -> tuple[Any, Any]:
    """A store on the harness's database and its lease document (private: the race needs it)."""
    harness = project.harness
    if isinstance(harness, MongoHarness):
        from clandestino_mongo.connect import MongoTarget
        from clandestino_mongo.store import MongoStore, _MongoLease

        mongo = MongoStore(MongoTarget.parse(harness.url, 10), "clandestino", 5)

        def mongo_lease() -> Any:
            lock = mongo._db["clandestino_lock"]
            return _MongoLease(lock, 5, mongo._renewal_collection)

        return mongo, _Lazy(mongo_lease)
    if isinstance(harness, MinioHarness):
        from clandestino.config import load_settings
        from clandestino_minio.connect import MinioTarget
        from clandestino_minio.lease import MinioLease
        from clandestino_minio.store import MinioStore

        minio_target = MinioTarget.from_settings(load_settings(project.root, environ=project.env))
        minio = MinioStore(minio_target, 5)

        def minio_lease() -> Any:
            return MinioLease(minio.client, minio._fence, minio_target.client, 5)

        return minio, _Lazy(minio_lease)
    assert isinstance(harness, ElasticsearchHarness | OpenSearchHarness)
    from clandestino.config import load_settings
    from clandestino_elasticsearch.connect import ElasticsearchTarget, SearchTarget
    from clandestino_elasticsearch.store import SearchStore, _ElasticsearchLease
    from clandestino_opensearch.connect import OpenSearchTarget

    engine: type[SearchTarget] = (
        OpenSearchTarget if isinstance(harness, OpenSearchHarness) else ElasticsearchTarget
    )
    target = engine.from_settings(load_settings(project.root, environ=project.env))
    search = SearchStore(target, harness.control, 5)

    def search_lease() -> Any:
        index = f"{harness.control}_lock"
        return _ElasticsearchLease(search._es, index, search._renewal_client, search._clock, 5)

    return search, _Lazy(search_lease)


class _Lazy:
    """The lease document, made at first use (after the store opened its client)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = self._make()
        return getattr(self._made, name)


def _minio_lock(owner: str, token: str, lease_seconds: float) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(hours=1)
    return {"owner": owner, "token": token, "since": since.isoformat()} | {
        "lease_seconds": lease_seconds,
        "released": False,
        "nonce": token,
    }
