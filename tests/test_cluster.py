"""A node lost in the middle of a run, on a three-node Elasticsearch cluster started here from the
same jars as the single node (tests/servers/maven_node.py); CLANDESTINO_TEST_ELASTICSEARCH_NODE
picks its release line. The whole contract suite runs on such a cluster with
CLANDESTINO_TEST_ELASTICSEARCH_NODES=3."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.harness import ElasticsearchHarness
from tests.servers.elasticsearch import NODE
from tests.servers.maven_node import Node, kind_from_env, start_nodes
from tests.test_contract import _Deployer

DEPLOYERS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    with start_nodes(kind_from_env(NODE, "es9"), tmp_path_factory.mktemp("cluster"), 3) as nodes:
        yield nodes


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.load(answer)


def _primary_holder(nodes: list[Node], index: str, asking: Node | None = None) -> Node:
    url = (asking or nodes[0]).url
    shards = _get(f"{url}/_cat/shards/{index}?format=json&h=node,prirep,state")
    started = [s["node"] for s in shards if s["prirep"] == "p" and s["state"] == "STARTED"]
    assert len(started) == 1, f"no started primary of {index}: {shards}"
    return next(node for node in nodes if node.name == started[0])


def _point_at(project: Project, harness: ElasticsearchHarness, url: str) -> None:
    from elasticsearch import Elasticsearch

    harness.client.close()
    harness.server_url = url
    harness.client = Elasticsearch(url, request_timeout=60)
    project.env.update(harness.env())


def test_the_node_holding_the_control_index_primary_dies_mid_run(
    cluster: list[Node], tmp_path: Path
) -> None:
    # Deployers talk to a node that survives; which one is known once the control index is.
    harness = ElasticsearchHarness(tmp_path / "backend", cluster[0].url)
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, harness)
    first = project.add_effect("first").stem
    assert project.cdt("-m").returncode == 0
    victim = _primary_holder(cluster, harness.control)
    survivor = next(node for node in cluster if node is not victim)
    _point_at(project, harness, survivor.url)
    barrier = tmp_path / "barrier"
    tags = ["blocked", *(f"after{index}" for index in range(4))]
    names = [first, project.add_effect(tags[0], wait_for=barrier).stem]
    names += [project.add_effect(tag).stem for tag in tags[1:]]

    env = {"CLANDESTINO_LOCK_TIMEOUT": "300", "CLANDESTINO_CONNECT_TIMEOUT": "60"}
    runs = [_Deployer(project.start("-m", env=env)) for _ in range(DEPLOYERS)]
    deadline = time.monotonic() + 120
    reached = Path(f"{barrier}.reached")
    while not (reached.exists() and sum(run.waiting() for run in runs) >= DEPLOYERS - 1):
        assert time.monotonic() < deadline, [run.text() for run in runs]
        time.sleep(0.05)
    # One holds the lock inside a migration, the others wait for it: the primary goes now.
    victim.kill()
    barrier.touch()
    outcomes = [run.finish() for run in runs]

    # The control index lives on: its replica on a surviving node became the primary.
    assert victim.process.poll() is not None
    assert _primary_holder(cluster, harness.control, survivor) is not victim
    effects = harness.effects()
    assert len(effects) == len(set(effects)), effects  # no effect twice
    recorded = harness.records()
    assert set(recorded) <= {first} | {
        n for n, t in zip(names[1:], tags, strict=True) if t in effects
    }
    interrupted = [
        name for name in names if any(f"{name}: up() by " in errors for _, errors in outcomes)
    ]
    assert all(code in (0, 1, 3) for code, _ in outcomes), outcomes

    follow_up = project.cdt("-m", env=env)
    if follow_up.returncode != 0:
        # Only a step honestly reported as interrupted may need a hand, then --repair.
        assert follow_up.returncode == 1, follow_up.stderr
        assert "never finished" in follow_up.stderr and "cdt --repair" in follow_up.stderr
        stuck = [name for name in names if f"{name}: up() by " in follow_up.stderr]
        assert len(stuck) == 1, follow_up.stderr
        harness.remove_effects(tags[names.index(stuck[0]) - 1])
        repaired = project.cdt("--repair", "--yes", env=env)
        assert repaired.returncode == 0, repaired.stderr
        follow_up = project.cdt("-m", env=env)
    assert follow_up.returncode == 0, follow_up.stdout + follow_up.stderr
    assert sorted(harness.effects()) == sorted(["first", *tags])
    assert harness.records() == names, (interrupted, outcomes)
    harness.cleanup()
