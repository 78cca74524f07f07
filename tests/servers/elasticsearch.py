"""An Elasticsearch server for the tests: CLANDESTINO_TEST_ELASTICSEARCH_URL, or a real node
started here from Elastic's own jars on Maven Central (tests/elasticsearch_node, see
tests/servers/maven_node.py). CLANDESTINO_TEST_ELASTICSEARCH_NODE picks the release line the
tests start (es9, the default, or es8); CLANDESTINO_TEST_ELASTICSEARCH_NODES=3 makes it a
three-node cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.maven_node import kind_from_env, start_nodes

__all__ = ["NODE", "NODES", "TEST_URL", "elasticsearch_server"]

TEST_URL = "CLANDESTINO_TEST_ELASTICSEARCH_URL"
NODE = "CLANDESTINO_TEST_ELASTICSEARCH_NODE"
NODES = "CLANDESTINO_TEST_ELASTICSEARCH_NODES"


@contextmanager
def elasticsearch_server(workdir: Path) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of a running node with security off."""
    given = os.environ.get(TEST_URL)
    if given:
        yield given
        return
    count = int(os.environ.get(NODES) or "1")
    with start_nodes(kind_from_env(NODE, "es9"), workdir, count) as nodes:
        yield nodes[0].url
