"""Keeping passwords and tokens out of everything Clandestino prints.

Messages already name servers by masked URLs; this is the net under them, for what a driver
puts in an exception text or a traceback: every secret the settings hold is replaced by ***
in all output, `--json` and `--debug` included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TextIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["RedactingStream", "secrets_in"]

_SECRET_NAME = re.compile(r"PASSWORD|API_KEY|TOKEN|SECRET", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"pass|secret|token|key", re.IGNORECASE)
# Shorter values are too likely to be ordinary words or digits in unrelated text.
_SHORTEST = 4


def secrets_in(values: Mapping[str, str]) -> list[str]:
    """Every secret in Clandestino's settings, in the forms it may be printed in, longest first."""
    found: set[str] = set()
    for name, value in values.items():
        if not name.startswith("CLANDESTINO_") or not value:
            continue
        if _SECRET_NAME.search(name):
            found.add(value)
        if "://" in value:
            found.update(_url_secrets(value))
    forms = {form for secret in found for form in (secret, quote(secret, safe=""), unquote(secret))}
    return sorted((s for s in forms if len(s) >= _SHORTEST), key=len, reverse=True)


def _url_secrets(url: str) -> Iterable[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    secrets = [password] if password else []
    secrets += [value for key, value in parse_qsl(parts.query) if _SECRET_QUERY.search(key)]
    return secrets


class RedactingStream:
    """A text stream that writes through to another with every secret replaced by ***."""

    def __init__(self, stream: TextIO, secrets: list[str]) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:
        return self._stream.encoding
