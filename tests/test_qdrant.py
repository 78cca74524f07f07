"""The Qdrant backend, on qdrant-client's local mode, or on CLANDESTINO_TEST_QDRANT_URL.

No Qdrant server can be had on this machine (it is not on crates.io, PyPI, npm or Debian, and
building it from source needs git dependencies that no registry serves). These tests, and the
contract suite's qdrant runs, use qdrant-client's local mode (`AsyncQdrantClient(path=...)`), which
the Qdrant project maintains as an in-process implementation of its API: it is not a server, and
it serves one process at a time. Set CLANDESTINO_TEST_QDRANT_URL to run them on a real server
(whose `clandestino` collection each test drops).

Qdrant has no compare-and-set we know to be atomic, so the backend has no lock and says so.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, step_lines
from tests.harness import QdrantHarness


@pytest.fixture
def qdrant(tmp_path: Path) -> Iterator[Project]:
    harness = QdrantHarness(tmp_path / "harness")
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


def _original_id(name: str) -> str:
    return str(uuid.UUID(hex=hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]))


def test_the_originals_points_are_adopted_and_kept_as_they_are(qdrant: Project) -> None:
    old = [qdrant.add_effect(tag).stem for tag in ("old1", "old2")]
    qdrant.harness.write_original_control(old)
    new = qdrant.add_effect("new").stem

    result = qdrant.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert step_lines(result.stdout) == [
        f"-> running {old[0]} ⏭️",
        f"-> running {old[1]} ⏭️",
        f"-> running {new} ✅",
    ]
    assert qdrant.harness.effects() == ["new"]

    async def points(client: Any) -> dict[str, Any]:
        found, _ = await client.scroll("clandestino", limit=100, with_payload=True)
        return {str(point.id): point.payload for point in found}

    stored = qdrant.harness._run(points)  # type: ignore[attr-defined]
    assert set(stored) == {_original_id(name) for name in [*old, new]}
    assert stored[_original_id(old[0])]["name"] == old[0]
    assert "checksum" not in stored[_original_id(old[0])]
    assert len(stored[_original_id(new)]["checksum"]) > 0


def test_the_run_says_plainly_that_it_has_no_lock(qdrant: Project) -> None:
    qdrant.add_effect("one")

    result = qdrant.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert "no lock: Qdrant has no compare-and-set" in result.stdout
    assert "this repository has no lock: never run two deployers at once" in result.stderr
    assert "locked" not in result.stdout.lower()


def test_the_template_keeps_the_originals_infra_and_runs(qdrant: Project) -> None:
    made = qdrant.cdt("-cm", "first", "qdrant")

    assert made.returncode == 0, made.stderr
    (created,) = (qdrant.root / "migrations").glob("migration_*_first.py")
    text = created.read_text()
    assert "from clandestino_qdrant.infra import QdrantInfra" in text
    assert "infra = QdrantInfra()" in text and "self.infra.get_client()" in text
    applied = qdrant.cdt("-m")
    assert applied.returncode == 0, applied.stderr
    assert qdrant.harness.records() == [created.stem]


def test_an_unreachable_server_is_exit_3_and_the_api_key_never_shows(qdrant: Project) -> None:
    qdrant.add_effect("one")
    key = "qdrant-key-" + "k" * 20
    env = {
        "CLANDESTINO_QDRANT_CONNECTION_STRING": "http://127.0.0.1:9",
        "CLANDESTINO_QDRANT_API_KEY": key,
        "CLANDESTINO_CONNECT_TIMEOUT": "2",
    }

    result = qdrant.cdt("-m", env=env)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "Qdrant at 127.0.0.1:9" in result.stderr
    assert key not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_url_of_another_kind_is_exit_2(qdrant: Project) -> None:
    result = qdrant.cdt("-m", env={"CLANDESTINO_QDRANT_CONNECTION_STRING": "qdrant:6333"})

    assert result.returncode == 2
    assert "CLANDESTINO_QDRANT_CONNECTION_STRING is not a Qdrant URL" in result.stderr
