"""The client and the node must share a major version.

A 9.x client asks a node for `compatible-with=9`, which an 8.x node refuses on every request
(`media_type_header_exception`); an 8.x client on a 9.x node gets answers shaped for 8.x. Either way
the fix is the other client, so the connection is refused at once with the `pip install` that
gives the matching one.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from clandestino.errors import ConfigurationError

if TYPE_CHECKING:
    from clandestino_elasticsearch.engine import SearchClient

__all__ = ["check_server_version", "version_mismatch"]

# The newest major the extra allows; a node newer than this needs a Clandestino that allows it.
_NEWEST_CLIENT = 9


async def check_server_version(client: SearchClient, where: str) -> None:
    """Connect: GET / through the client; refuse a node of another major version."""
    from clandestino_elasticsearch.engine import ApiError

    client_version = metadata.version("elasticsearch")
    try:
        info: Any = await client.info()
    except ApiError:
        # The request may have been refused for its compatibility header alone: ask again
        # without it, only to learn the node's version.
        number = await _plain_version(client)
        if number is not None and (error := version_mismatch(number, client_version, where)):
            raise error from None
        raise
    number = str(info.get("version", {}).get("number", ""))
    if error := version_mismatch(number, client_version, where):
        raise error


async def _plain_version(client: SearchClient) -> str | None:
    """The node's version from GET / with a plain JSON Accept header. Through the transport: the
    client itself would turn application/json back into its compatibility media type."""
    from clandestino_elasticsearch.engine import TransportError

    try:
        answer = await client.transport.perform_request(
            "GET", "/", headers={"accept": "application/json"}
        )
    except TransportError:
        return None
    body: Any = answer.body
    try:
        return str(body["version"]["number"]) if answer.meta.status == 200 else None
    except (KeyError, TypeError):
        return None


def version_mismatch(server: str, client: str, where: str) -> ConfigurationError | None:
    """The error for a node of version `server` reached by a client of version `client`."""
    server_major, client_major = _major(server), _major(client)
    if server_major is None or client_major is None or server_major == client_major:
        return None
    message = (
        f"Elasticsearch at {where} runs {server}, but the installed client is"
        f" elasticsearch-py {client}, which cannot talk to it"
    )
    if server_major > _NEWEST_CLIENT:
        return ConfigurationError(
            message, f"Clandestino supports Elasticsearch {_NEWEST_CLIENT} at newest"
        )
    if server_major < 8:
        return ConfigurationError(message, "Clandestino supports Elasticsearch 8 and 9")
    wanted = f"elasticsearch[async]>={server_major},<{server_major + 1}"
    return ConfigurationError(message, f"install the matching client: pip install '{wanted}'")


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None
