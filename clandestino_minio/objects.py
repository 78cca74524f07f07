"""Objects in the control bucket, read and written on condition of their ETag.

miniopy-async's public `put_object` turns every header it does not know into user metadata, so
the conditional writes (`If-None-Match: *`, `If-Match: <etag>`) go through its `_put_object`,
which sends the headers as given and signs them with the client's own signer. Everything else is
its public API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from miniopy_async.api import Minio

__all__ = ["BUCKET", "Changed", "Stored", "create_bucket", "list_root", "read", "write"]

# Fixed, as in the original.
BUCKET = "clandestino"
# 412 when the condition does not hold; 409 when another conditional write is in flight.
_CONFLICTS = {"PreconditionFailed", "ConditionalRequestConflict"}
_MISSING = {"NoSuchKey", "NoSuchBucket"}


class Changed(Exception):
    """A conditional write found the object absent, present or changed, against its condition."""


@dataclass(frozen=True)
class Stored:
    body: bytes
    etag: str
    # Seconds since the object was written, by the server's clock (its Date less the object's
    # Last-Modified, both to the second); None if the server sent either header unreadable.
    age: float | None = None


async def read(client: Minio, key: str) -> Stored | None:
    from miniopy_async.error import S3Error

    try:
        response = await client.get_object(BUCKET, key)
    except S3Error as exc:
        if exc.code in _MISSING:
            return None
        raise
    try:
        body = await response.read()
        etag = response.headers.get("ETag", "").strip('"')
        return Stored(
            body, etag, _age(response.headers.get("Date"), response.headers.get("Last-Modified"))
        )
    finally:
        response.release()


async def write(
    client: Minio, key: str, body: bytes, *, if_match: str | None = None, absent: bool = False
) -> str:
    """Put `body` at `key` if the object still has the ETag `if_match`, or if it is `absent`;
    return the new ETag, or raise Changed."""
    from miniopy_async.error import S3Error

    headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": "application/json"}
    if absent:
        headers["If-None-Match"] = "*"
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    try:
        result = await client._put_object(BUCKET, key, body, headers)
    except S3Error as exc:
        if exc.code in _CONFLICTS:
            raise Changed(key) from exc
        raise
    return str(result.etag)


async def list_root(client: Minio) -> dict[str, datetime | None]:
    """The objects at the bucket's root (the original's records), with their times."""
    from miniopy_async.error import S3Error

    found: dict[str, datetime | None] = {}
    try:
        async for item in client.list_objects(BUCKET):
            if item.object_name and not item.is_dir:
                found[item.object_name] = item.last_modified
    except S3Error as exc:
        if exc.code == "NoSuchBucket":
            return {}
        raise
    return found


async def create_bucket(client: Minio) -> None:
    from miniopy_async.error import S3Error

    try:
        await client.make_bucket(BUCKET)
    except S3Error as exc:
        # Another deployer made it first.
        if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def _age(date: str | None, last_modified: str | None) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        return (
            parsedate_to_datetime(date or "") - parsedate_to_datetime(last_modified or "")
        ).total_seconds()
    except (TypeError, ValueError):
        return None
