"""An OpenSearch server for the tests: CLANDESTINO_TEST_OPENSEARCH_URL, or a real node started
here from OpenSearch's own jars on Maven Central (tests/opensearch_node, see
tests/servers/maven_node.py), with painless and reindex. CLANDESTINO_TEST_OPENSEARCH_NODE picks
the release line (os3, the default, or os2)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.maven_node import kind_from_env, start_nodes

__all__ = ["NODE", "TEST_URL", "opensearch_server"]

TEST_URL = "CLANDESTINO_TEST_OPENSEARCH_URL"
NODE = "CLANDESTINO_TEST_OPENSEARCH_NODE"


@contextmanager
def opensearch_server(workdir: Path) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of a running node with no security plug-in."""
    given = os.environ.get(TEST_URL)
    if given:
        yield given
        return
    with start_nodes(kind_from_env(NODE, "os3"), workdir) as nodes:
        yield nodes[0].url
