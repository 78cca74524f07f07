"""SHA-256 for the migration checksums, without loading OpenSSL when the interpreter has its own.

`hashlib` loads OpenSSL first, about 2.4 ms of a 57 ms no-op `cdt -m` here, for digests of a few
hundred bytes per file. CPython ships its own SHA-256 in a private module whose name changed
(`_sha256` up to 3.11, `_sha2` from 3.12), so that private use is kept here, behind one function
that falls back to the public `hashlib.sha256` and is tested on every Python the suite runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Digest", "sha256_function"]

# CPython's built-in SHA-256 modules, newest name first.
_BUILTIN_MODULES = ("_sha2", "_sha256")


class Digest(Protocol):
    def hexdigest(self) -> str: ...


def sha256_function() -> Callable[[bytes], Digest]:
    """CPython's built-in sha256 constructor, or hashlib's where it has none."""
    for name in _BUILTIN_MODULES:
        try:
            module = __import__(name)
        except ImportError:
            continue
        constructor: Callable[[bytes], Digest] = module.sha256
        return constructor
    from hashlib import sha256

    return sha256
