"""The net under masked values: secrets that a driver puts into its own error texts.

Clandestino's own messages carry `Secret`s and `ConnectionString`s, which print masked. What a
driver writes into an exception text or a traceback is not ours to shape, so every line printed
passes through `RedactingStream`, which replaces each secret of the settings by ***, in every form
a driver or a library may print it: as written, percent-decoded and -encoded (`quote`,
`quote_plus`), JSON- and repr-escaped, and base64 of `user:password` (a basic-auth header).

A secret is masked only where a secret can stand, never inside a longer word: `postgres` as a
password leaves `postgresql://`, `clandestino[postgres]` and a migration named `..._postgres` alone.
A secret that could be an ordinary word (letters only, or shorter than four characters) is masked
only in the places a credential takes in a text: between `:` and `@`, after `=`, inside quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TextIO

__all__ = ["RedactingStream", "secret_forms", "secrets_in"]

_SECRET_NAME = re.compile(r"PASSWORD|API_KEY|TOKEN|SECRET", re.IGNORECASE)
_USER_NAME = re.compile(r"_USER$")
# A secret is not masked where it continues a word, a dotted name, a dashed name or a bracket.
_BEFORE = r"(?<![\w.\-\[])"
_AFTER = r"(?![\w.\-\]])"
# Where a credential stands in a text: user:SECRET@host, key=SECRET, 'SECRET', "SECRET".
_PLACES = (
    r"(?<=:){s}(?=@)",
    r"(?<==){s}(?=$|[\s&;,'\"])",
    r"(?<='){s}(?=')",
    r"(?<=\"){s}(?=\")",
)


def secrets_in(values: Mapping[str, str]) -> list[str]:
    """Every secret in Clandestino's settings, in every form it may be printed in."""
    from clandestino.secret import credentials_in, user_in

    found: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    users = [v for k, v in values.items() if k.startswith("CLANDESTINO_") and _USER_NAME.search(k)]
    for name, value in values.items():
        if not name.startswith("CLANDESTINO_") or not value:
            continue
        if _SECRET_NAME.search(name):
            found.add(value)
            pairs.update((user, value) for user in users if user)
            continue
        credentials = credentials_in(value) if ("@" in value or "=" in value) else []
        found.update(credentials)
        user = user_in(value)
        if user and credentials:
            pairs.add((user, credentials[0]))
    return secret_forms(found, pairs)


def secret_forms(secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> list[str]:
    """`secrets` in the forms they are printed in, longest first."""
    import base64
    import json
    from urllib.parse import quote, quote_plus, unquote

    forms: set[str] = set()
    for secret in secrets:
        for plain in {secret, unquote(secret)}:
            forms.update(
                {
                    plain,
                    quote(plain, safe=""),
                    quote_plus(plain, safe=""),
                    json.dumps(plain)[1:-1],
                    json.dumps(plain, ensure_ascii=False)[1:-1],
                    repr(plain)[1:-1],
                }
            )
    for user, password in pairs:
        for plain in {password, unquote(password)}:
            basic = base64.b64encode(f"{unquote(user)}:{plain}".encode()).decode()
            forms.add(basic)
    return sorted((form for form in forms if form), key=len, reverse=True)


def _could_be_a_word(secret: str) -> bool:
    return len(secret) < 4 or secret.isalpha()


def _pattern(secrets: list[str]) -> re.Pattern[str] | None:
    alternatives: list[str] = []
    for secret in secrets:
        escaped = re.escape(secret)
        if _could_be_a_word(secret):
            alternatives.extend(place.format(s=escaped) for place in _PLACES)
        else:
            alternatives.append(f"{_BEFORE}{escaped}{_AFTER}")
    return re.compile("|".join(alternatives)) if alternatives else None


class RedactingStream:
    """A text stream that writes through to another with every secret replaced by ***."""

    def __init__(self, stream: TextIO, secrets: list[str]) -> None:
        self._stream = stream
        self._pattern = _pattern(sorted(secrets, key=len, reverse=True))

    def redact(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern is not None else text

    def write(self, text: str) -> int:
        self._stream.write(self.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:
        return self._stream.encoding
