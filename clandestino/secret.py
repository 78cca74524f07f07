"""Values that print themselves masked, so that a secret never travels as a plain string.

A connection setting is parsed once into a `ConnectionString` (its `.masked` form, with the password
and secret query values as ***, is what every message shows) and passwords or keys into a `Secret`.
Both render masked through repr, str, format and JSON (which falls back to str); only `.reveal()`
gives the value, and only the code handing it to a driver calls that.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "ConnectionString", "Secret", "credentials_in", "mask_url", "user_in"]

MASK = "***"
# Query parameters whose values are credentials: passwords, tokens, keys, and MongoDB's
# authMechanismProperties, which carries AWS_SESSION_TOKEN.
SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key|authmechanismproperties", re.IGNORECASE)
_KEY_VALUE_SECRET = re.compile(
    r"""(?P<key>\b(?:password|passwd|pass|pwd|sslpassword|api_?key|token|secret)\s*=\s*)"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|\S+)""",
    re.IGNORECASE,
)


class Secret:
    """A password, key or token: `***` in every rendering but `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:
        # Pickling would carry the value to wherever the pickle is printed or stored.
        raise TypeError("a Secret cannot be pickled")


class ConnectionString:
    """A connection setting as given, shown everywhere as `.masked`."""

    __slots__ = ("_value", "masked")

    def __init__(self, value: str) -> None:
        self._value = value
        self.masked = mask_url(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"ConnectionString({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnectionString) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:
        raise TypeError("a ConnectionString cannot be pickled")


def mask_url(text: str) -> str:
    """`text` with every place a credential can stand replaced by ***.

    Written for malformed input too, since that is what error messages quote: the user-info is
    everything before the last `@` (an unencoded `/`, `?` or `@` in a password stays inside it),
    with one slash after the scheme or none (`mongodb:/u:pw@h/db`, `u:pw@host:9200`) as well;
    libpq-style `password=...` pairs are masked as well.
    """
    if "://" not in text and "@" not in text and "=" in text:
        return _KEY_VALUE_SECRET.sub(lambda m: m["key"] + MASK, text)
    scheme, separator, rest = _split_scheme(text)
    if "@" in rest:
        userinfo, _, tail = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if not colon and userinfo:
            # No colon: the whole user-info may be a token (mongodb://TOKEN@host).
            user = userinfo if re.fullmatch(r"[\w.\-%]{0,64}", userinfo) else MASK
        if re.search(r"[/?#\s]", user):
            user = MASK
        rest = f"{user}:{MASK}@{tail}" if colon else f"{user}@{tail}"
    return scheme + separator + _mask_query(rest)


def _split_scheme(text: str) -> tuple[str, str, str]:
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)(:/{0,2})(?=.)", text)
    if match is None or "@" in match[1]:
        return "", "", text
    after = text[match.end() :]
    if match[2] == ":" and (re.match(r"\d+(?:[/?]|$)", after) or "@" in after):
        # host:port and user:password@host do not start with a scheme.
        return "", "", text
    return match[1], match[2], text[match.end() :]


def _mask_query(rest: str) -> str:
    head, question, query = rest.partition("?")
    if not question:
        return rest
    pairs = []
    for pair in query.split("&"):
        key, equals, _ = pair.partition("=")
        pairs.append(f"{key}={MASK}" if equals and SECRET_QUERY_KEY.search(key) else pair)
    return f"{head}?{'&'.join(pairs)}"


def credentials_in(text: str) -> list[str]:
    """The secrets `mask_url` hides in `text`: password, user-only token, secret query values and
    libpq `password=` values, as written (still percent-encoded where they were)."""
    found: list[str] = []
    if "://" not in text and "@" not in text and "=" in text:
        for match in _KEY_VALUE_SECRET.finditer(text):
            value = match["value"]
            if value[:1] in {"'", '"'}:
                value = re.sub(r"\\(.)", r"\1", value[1:].removesuffix(value[0]))
            found.append(value)
        return found
    _, _, rest = _split_scheme(text)
    if "@" in rest:
        userinfo = rest.rpartition("@")[0]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
        rest = rest.rpartition("@")[2]
    query = rest.partition("?")[2]
    for pair in query.split("&") if query else []:
        key, equals, value = pair.partition("=")
        if equals and SECRET_QUERY_KEY.search(key):
            found.append(value)
            # AWS_SESSION_TOKEN:xyz: the token alone may be printed too.
            found.extend(part.partition(":")[2] for part in value.split(",") if ":" in part)
    return [secret for secret in found if secret]


def user_in(text: str) -> str | None:
    """The user name of a URL, for the basic-auth form `user:password` a driver may print."""
    _, _, rest = _split_scheme(text)
    if "@" not in rest:
        return None
    user, colon, _ = rest.rpartition("@")[0].partition(":")
    return user if colon else None
