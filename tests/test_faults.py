"""Faults in the middle of a run, on real servers, through the real `cdt` command: the connection
cut, SIGTERM, a migration that hangs. After each, the next run completes, and every migration's
effect is in the database exactly once, with one record.

The connection is cut by a proxy of our own (tests/servers/proxy.py) between `cdt` and the
server; SQLite has no connection, so that test runs on the server backends only.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Project, step_lines
from tests.interruptions import error_lines, refused_then_repaired, start_and_wait_for
from tests.servers.proxy import TcpProxy

OK, ERROR = "✅", "⚠️"
SERVER_NAMES = {
    "postgres": "PostgreSQL",
    "mongo": "MongoDB",
    "elasticsearch": "Elasticsearch",
    "minio": "MinIO",
    "opensearch": "OpenSearch",
}
# Through the proxy: a short connect timeout, so that a driver looking for the server again after
# the cut gives up soon; a lease long enough that the run meets the lost connection (and finishes
# cleaning up) well before the lease it can no longer renew runs out.
# Short enough to give up soon after the cut, long enough for a loaded 2-core machine.
VIA_PROXY = {"CLANDESTINO_CONNECT_TIMEOUT": "3", "CLANDESTINO_LOCK_LEASE": "15"}


@contextmanager
def _proxy_in_front_of(project: Project) -> Iterator[TcpProxy]:
    """A proxy in front of the project's server; `cdt` goes through it when given env_via()."""
    address = project.harness.server_address()
    assert address is not None
    with TcpProxy(address) as proxy:
        yield proxy


@pytest.fixture
def proxy(server_project: Project) -> Iterator[TcpProxy]:
    with _proxy_in_front_of(server_project) as running:
        yield running


@pytest.fixture
def lease_proxy(lease_project: Project) -> Iterator[TcpProxy]:
    with _proxy_in_front_of(lease_project) as running:
        yield running


@pytest.mark.parametrize("met_by", ["migration", "record"])
def test_a_connection_cut_mid_run_exits_3_with_nothing_half_recorded(
    server_project: Project, proxy: TcpProxy, met_by: str
) -> None:
    """The cut comes while the second migration sleeps, its effect written. Then either its up()
    reads from the database (met by the migration), or it returns and the run writes its record
    (met by the record)."""
    project, harness = server_project, server_project.harness
    first = project.add_effect("first")
    cut = project.add_effect("cut", sleep=2, query_after=met_by == "migration")
    run = start_and_wait_for(
        project, "cut", env={**harness.env_via(proxy.host, proxy.port), **VIA_PROXY}
    )
    assert proxy.connections > 0, "cdt does not go through the proxy"

    # It keeps refusing new connections: a driver that reconnects would otherwise carry on.
    proxy.cut()
    cut_at = time.monotonic()
    out, err = run.communicate(timeout=120)
    took = time.monotonic() - cut_at

    assert run.returncode == 3, (out, err)
    errors = error_lines(err)
    assert len(errors) == 1, err
    assert SERVER_NAMES[harness.name] in errors[0], errors[0]
    assert f"127.0.0.1:{proxy.port}" in errors[0], errors[0]
    assert "Traceback" not in out + err
    assert f"-> running {first.stem} {OK}" in step_lines(out)
    assert f"-> running {cut.stem} {ERROR}" in step_lines(out)
    assert took < 60, f"cdt took {took:.1f} s to give up"
    assert harness.records() == [first.stem]
    if harness.leaves_markers:
        # Its lock is still in the database (it could not delete it): taken over after the lease.
        refused = refused_then_repaired(project, cut, "cut")
        assert "took the lock over from" in refused.stderr, refused.stderr
    else:
        assert harness.effects() == ["first"]
    again = project.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert sorted(harness.effects()) == ["cut", "first"]
    assert harness.records() == [first.stem, cut.stem]


def test_a_connection_cut_longer_than_the_lease_says_so_not_that_another_took_the_lock(
    lease_project: Project, lease_proxy: TcpProxy
) -> None:
    """A long migration on a store whose lock is a lease: once the connection is gone the run
    cannot renew its lease, which runs out before the migration ends. Nobody took the lock over:
    the line must say the server was lost, not blame another deployer or a stalled run."""
    project, harness, proxy = lease_project, lease_project.harness, lease_proxy
    first = project.add_effect("first")
    cut = project.add_effect("cut", sleep=60)
    settings = {"CLANDESTINO_CONNECT_TIMEOUT": "1", "CLANDESTINO_LOCK_LEASE": "3"}
    run = start_and_wait_for(
        project, "cut", env={**harness.env_via(proxy.host, proxy.port), **settings}
    )
    assert proxy.connections > 0, "cdt does not go through the proxy"

    proxy.cut()
    cut_at = time.monotonic()
    out, err = run.communicate(timeout=120)
    took = time.monotonic() - cut_at

    assert run.returncode == 3, (out, err)
    errors = error_lines(err)
    assert len(errors) == 1, err
    assert f"127.0.0.1:{proxy.port}" in errors[0], errors[0]
    assert "another deployer" not in errors[0] and "stalled" not in errors[0], errors[0]
    assert "Traceback" not in out + err
    assert f"-> running {cut.stem} {ERROR}" in step_lines(out)
    assert took < 30, f"cdt took {took:.1f} s to give up"
    assert harness.records() == [first.stem]
    refused_then_repaired(project, cut, "cut")
    again = project.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert sorted(harness.effects()) == ["cut", "first"]
    assert harness.records() == [first.stem, cut.stem]


def test_sigterm_mid_migration_releases_the_lock_and_exits_143(project: Project) -> None:
    harness = project.harness
    before = project.add_effect("done_before")
    slow = project.add_effect("terminated", sleep=60)
    # A long lease: a lock left behind would make the next runs wait, not be taken over.
    run = start_and_wait_for(project, "terminated", env={"CLANDESTINO_LOCK_LEASE": "60"})

    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)

    assert run.returncode == 143, (out, err)
    assert "terminated" in err.splitlines()
    assert f"-> running {slow.stem} {ERROR}" in step_lines(out)
    assert "Traceback" not in out + err
    assert harness.records() == [before.stem]
    no_wait = {"CLANDESTINO_LOCK_TIMEOUT": "1"}
    if harness.leaves_markers:
        refused = refused_then_repaired(project, slow, "terminated", env=no_wait)
        assert "waiting for the lock" not in refused.stdout
        assert "took the lock over" not in refused.stderr
    else:
        assert harness.effects() == ["done_before"]  # rolled back
    again = project.cdt("-m", env=no_wait)
    assert again.returncode == 0, again.stderr
    assert "waiting for the lock" not in again.stdout
    assert sorted(harness.effects()) == ["done_before", "terminated"]
    assert harness.records() == [before.stem, slow.stem]


def test_a_hanging_migration_is_stopped_by_the_migration_timeout(
    project: Project, tmp_path: Path
) -> None:
    harness = project.harness
    before = project.add_effect("before")
    down_called = tmp_path / "down-called"
    hanging = project.add_effect("hanging", sleep=3600, down_marker=down_called)

    began = time.monotonic()
    result = project.cdt("-m", env={"CLANDESTINO_MIGRATION_TIMEOUT": "2"}, timeout=120)
    took = time.monotonic() - began

    assert result.returncode == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert f"{hanging.stem}: up() did not finish within 2 s" in errors[0], errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert f"-> running {hanging.stem} {ERROR}" in step_lines(result.stdout)
    assert took < 20, f"cdt took {took:.1f} s to stop a migration after 2 s"
    # The clean-up down() ran, where the rollback did not already undo the step.
    assert down_called.exists() is not harness.rollback_undoes_failed_steps
    assert harness.records() == [before.stem]
    assert harness.effects() == ["before"]  # rolled back, or removed by the clean-up down()

    # Run as it is, it would hang again: its author makes it quick.
    hanging.write_text(harness.effect_migration("hanging"))
    again = project.cdt("-m")
    assert again.returncode == 0, again.stderr
    assert harness.effects() == ["before", "hanging"]
    assert harness.records() == [before.stem, hanging.stem]


HOLD_AT_EXIT = """

import atexit as _atexit


def _hold_the_process_at_exit() -> None:
    # The test looks at the lock while this process still lives, then lets it end.
    Path({reached!r}).write_text("at exit")
    deadline = time.monotonic() + 60
    while not Path({go!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


_atexit.register(_hold_the_process_at_exit)
"""
