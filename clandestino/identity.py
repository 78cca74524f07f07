"""Who this deployer is, in lock documents, markers and connection names."""

from __future__ import annotations

import os

__all__ = ["deployer_identity"]


def deployer_identity() -> str:
    """`host/pid`: enough for a person to find the process that holds a lock or left a marker."""
    import socket  # here: the engine imports this module, and SQLite needs no socket otherwise

    return f"{socket.gethostname()}/{os.getpid()}"
