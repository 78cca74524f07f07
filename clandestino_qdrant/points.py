"""The original's point for a migration: its id, vector and payload."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["COLLECTION", "point_id"]

# Fixed, as in the original.
COLLECTION = "clandestino"


def point_id(name: str) -> str:
    """The original's id: the first 128 bits of the name's SHA-256, as a UUID."""
    return str(uuid.UUID(hex=hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]))
