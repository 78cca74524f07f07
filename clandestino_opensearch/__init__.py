"""The OpenSearch backend on opensearch-py's async client (`opensearch-py[async]`).

It shares the Elasticsearch backend's store, lease lock, markers and records
(clandestino_elasticsearch.store); only the client differs. Importing this package does not
import the client; using it does.
"""

from clandestino_opensearch import ref
from clandestino_opensearch.infra import OpenSearchInfra

__all__ = ["OpenSearchInfra", "ref"]
