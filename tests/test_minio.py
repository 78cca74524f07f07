"""The MinIO backend on a real MinIO server (started by the tests; see tests/servers/minio.py).

The contract suite covers the common behaviour (overlapping deployers behind a barrier, a dead
holder's lease taken over, markers and repair); these tests cover what is MinIO's own: the
conditional writes that make the lock and its fencing, the original's objects and tool, the
template, the one client per run, and the keys never shown.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clandestino.lease import LockLost
from clandestino.secret import ConnectionString, Secret
from tests.conftest import CDT, Project, clean_environ, step_lines
from tests.harness import MinioHarness
from tests.test_from_original import install_original

ORIGINAL_MINIO = [
    "clandestino==0.1.14",
    "clandestino-interfaces==0.1.1",
    "clandestino-minio==0.1.1",
]


@pytest.fixture
def minio(minio_url: str, tmp_path: Path) -> Iterator[Project]:
    harness = MinioHarness(tmp_path / "harness", minio_url)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


def _target(harness: MinioHarness) -> Any:
    from clandestino_minio.connect import MinioTarget

    return MinioTarget(
        ConnectionString(harness.url),
        harness.url.partition("://")[2],
        False,
        Secret(harness.access_key),
        Secret(harness.secret_key),
        10.0,
    )


def test_a_second_claim_of_the_lock_is_refused(minio: Project) -> None:
    """The lease object is created with If-None-Match: *, so only one claim can succeed."""
    from clandestino_minio.lease import MinioLease

    target = _target(minio.harness)  # type: ignore[arg-type]

    async def claim_twice() -> tuple[Any, Any, Any]:
        first, second = target.client(), target.client()
        try:

            async def no_fence(token: str) -> None:
                return None

            a = MinioLease(first, no_fence, target.client, 30)
            b = MinioLease(second, no_fence, target.client, 30)
            mine = await a.create("deployer-a", "token-a")
            theirs = await b.create("deployer-b", "token-b")
            return mine, theirs, await b.read()
        finally:
            await first.close_session()
            await second.close_session()

    mine, theirs, seen = asyncio.run(claim_twice())

    assert mine is not None and theirs is None
    assert seen.owner == "deployer-a" and seen.token == "token-a"


def test_an_ex_holder_whose_lease_was_taken_over_records_nothing(minio: Project) -> None:
    """Fencing: the new holder stamps the index; the old holder's next write fails (If-Match)."""
    from clandestino_minio.lease import MinioLease
    from clandestino_minio.store import MinioStore

    target = _target(minio.harness)  # type: ignore[arg-type]

    async def scenario() -> None:
        old, new = MinioStore(target, 60), MinioStore(target, 60)
        await old.open()
        await new.open()
        try:
            async with old.lock(5, lambda holder: None):
                await old.ensure()
                await old.applied()
                await old.record("migration_2024_01_01_00_00_01_first", "sum", 1)
                # What a waiter does once the old holder has stalled past its lease:
                document = MinioLease(new.client, new._fence, target.client, 60)
                current = await document.read()
                assert current is not None
                taken = await document.take_over(current, "new-deployer", "new-token")
                assert taken is not None
                await document.fence(taken)
                with pytest.raises(LockLost):
                    await old.record("migration_2024_01_01_00_00_02_late", "sum", 1)
                with pytest.raises(LockLost):
                    await old.mark_started("migration_2024_01_01_00_00_03_x", "up", "old")
                await new.applied()
                await new.record("migration_2024_01_01_00_00_04_by_new", "sum", 1)
        finally:
            await old.aclose()
            await new.aclose()

    asyncio.run(scenario())

    assert minio.harness.records() == [
        "migration_2024_01_01_00_00_01_first",
        "migration_2024_01_01_00_00_04_by_new",
    ]


def test_the_originals_objects_are_adopted_and_a_rollback_sticks(minio: Project) -> None:
    old = [minio.add_effect(tag).stem for tag in ("old1", "old2")]
    minio.harness.write_original_control(old)

    rolled = minio.cdt("-rm", "-y")

    assert rolled.returncode == 0, rolled.stderr
    assert f"-> rolling back {old[1]} ✅" in step_lines(rolled.stdout)
    # The original's object is still there, but the index has taken it over.
    assert minio.harness.records() == [old[0]]
    again = minio.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert minio.harness.effects() == ["old2"]
    assert minio.harness.records() == old


def test_one_client_per_run_closed_with_no_unclosed_session_warning(minio: Project) -> None:
    minio.add_effect("one")
    minio.add_effect("two")

    for args in (("-m",), ("-lm",), ("-rm", "-y"), ("-m", "--dry-run")):
        result = minio.cdt(*args)
        assert result.returncode == 0, result.stderr
        assert "Unclosed" not in result.stdout + result.stderr, args


def test_the_template_keeps_the_originals_infra_and_runs(minio: Project) -> None:
    made = minio.cdt("-cm", "first", "minio")

    assert made.returncode == 0, made.stderr
    (created,) = (minio.root / "migrations").glob("migration_*_first.py")
    text = created.read_text()
    assert "from clandestino_minio.infra import MinioInfra" in text
    assert "infra = MinioInfra()" in text and "self.infra.get_client()" in text
    applied = minio.cdt("-m")
    assert applied.returncode == 0, applied.stderr
    assert minio.harness.records() == [created.stem]


def test_wrong_keys_are_exit_3_and_never_shown(minio: Project) -> None:
    minio.add_effect("one")
    wrong = "wrong-secret-" + "x" * 20

    result = minio.cdt("-m", env={"CLANDESTINO_BUCKET_SECRET_KEY": wrong})

    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused the credentials" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert minio.harness.effects() == []


def test_a_url_of_another_kind_is_exit_2(minio: Project) -> None:
    result = minio.cdt("-m", env={"CLANDESTINO_BUCKET_CONNECTION_STRING": "minio.example:9000"})

    assert result.returncode == 2
    assert "CLANDESTINO_BUCKET_CONNECTION_STRING must be http://host:port" in result.stderr


def test_moving_from_the_original_on_minio_runs_nothing_again(
    minio: Project, tmp_path: Path
) -> None:
    original = install_original(ORIGINAL_MINIO)
    applied = [minio.add_effect(tag).stem for tag in ("first", "second")]
    env = {**clean_environ(), **minio.harness.env()}
    by_original = subprocess.run(
        [str(original), "-m"], cwd=minio.root, env=env, capture_output=True, text=True, timeout=120
    )
    assert by_original.returncode == 0, by_original.stdout + by_original.stderr
    assert minio.harness.effects() == ["first", "second"]
    assert sorted(minio.harness.records()) == sorted(applied)
    new = minio.add_effect("third").stem

    ours = subprocess.run(
        [str(CDT), "-m"], cwd=minio.root, env=env, capture_output=True, text=True, timeout=120
    )

    assert ours.returncode == 0, ours.stderr
    lines = step_lines(ours.stdout)
    assert [f"-> running {name} ⏭️" for name in applied] == lines[:2]
    assert lines[2:] == [f"-> running {new} ✅"]
    assert minio.harness.effects() == ["first", "second", "third"]
    assert minio.harness.records()[-1] == new
