"""A blocking PostgreSQL client just big enough for one read: connect, authenticate, run one
simple query, return its rows as text.

It exists for speed alone: `cdt -m` with nothing to do reads the control table with it instead
of importing asyncio and asyncpg, which took two thirds of that run. It takes only what it can
do exactly as asyncpg would; anything else (settings from PG* variables, a certificate to
check, another authentication method, a password it was not given) raises `NotHere`, and the
caller leaves the read to asyncpg, which reports any real problem in its own words.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Connection", "Endpoint", "NotHere", "QueryFailed", "connect"]

_PROTOCOL_3 = 196608
_SSL_REQUEST = 80877103
# Query parameters read here; any other one could change the connection, so asyncpg takes it.
_UNDERSTOOD = frozenset({"host", "port", "dbname", "user", "password", "sslmode"})
_AUTH_OK, _AUTH_CLEARTEXT, _AUTH_MD5, _AUTH_SASL = 0, 3, 5, 10
_AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL = 11, 12
# No message this client asks for comes near it; a larger length means another protocol.
_LONGEST_MESSAGE = 1 << 26


class NotHere(Exception):
    """This read is not one this client does exactly as asyncpg would: let asyncpg do it."""


class QueryFailed(Exception):
    """The server refused the query; `sqlstate` says why (42P01: no such table)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    database: str
    password: str | None
    sslmode: str

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str]) -> Endpoint:
        """The server a postgresql:// URL names, if every part that matters is in the URL."""
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.scheme not in {"postgres", "postgresql"} or query.keys() - _UNDERSTOOD:
            raise NotHere("a URL with settings this client does not read")
        if any(key.startswith("PGSSL") for key in environ):
            raise NotHere("TLS settings in PG* variables")
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        host, port = _split_hostport(hostport)
        # As asyncpg reads them: the query fills in only what the rest of the URL leaves out.
        host = host or query.get("host", "")
        port = port or query.get("port", "")
        user = unquote(user) or query.get("user", "")
        database = unquote(parts.path.lstrip("/")) or query.get("dbname", "")
        if not port and "PGPORT" in environ:
            raise NotHere("the port comes from PGPORT")
        if not (host and user and database) or "," in host or not (port or "0").isdigit():
            raise NotHere("a part of the address left to the defaults, several hosts, or a port")
        given = (unquote(password) if has_password else "") or query.get("password")
        return cls(
            host=host,
            port=int(port or 5432),
            user=user,
            database=database,
            # asyncpg looks an empty password up elsewhere, as it does a missing one.
            password=given or None,
            sslmode=query.get("sslmode", "prefer"),
        )


def _split_hostport(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = hostport.partition(":")
    return unquote(host), port


def connect(endpoint: Endpoint, timeout: float, settings: Mapping[str, str]) -> Connection:
    """A connection, authenticated and ready, opened with `settings` (application_name, ...);
    use it in a `with` block to close it. Raises NotHere, TimeoutError or OSError."""
    connection = Connection.open(endpoint, timeout)
    try:
        connection.start(endpoint, settings)
    except BaseException:
        connection.close()
        raise
    return connection


class Connection:
    """One session: `simple_query` as often as needed, then `close` (or a `with` block)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._offset = 0

    @classmethod
    def open(cls, endpoint: Endpoint, timeout: float) -> Connection:
        if endpoint.host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(f"{endpoint.host}/.s.PGSQL.{endpoint.port}")
            except BaseException:
                sock.close()
                raise
            return cls(sock)
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return cls(_secured(sock, endpoint, timeout))
        except BaseException:
            sock.close()
            raise

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._sock.sendall(b"X\x00\x00\x00\x04")
        except OSError:
            pass
        finally:
            self._sock.close()

    def start(self, endpoint: Endpoint, settings: Mapping[str, str]) -> None:
        pairs = {"user": endpoint.user, "database": endpoint.database, **settings}
        body = b"".join(f"{key}\0{value}\0".encode() for key, value in pairs.items()) + b"\0"
        self._sock.sendall(struct.pack("!ii", len(body) + 8, _PROTOCOL_3) + body)
        _Authentication(self, endpoint).run()
        # Parameter statuses and the backend key until ready: nothing we need.
        while self._receive()[0] != b"Z":
            pass

    def simple_query(self, sql: str) -> list[tuple[str | None, ...]]:
        """The rows of `sql` as text. Raises QueryFailed when the server refuses it."""
        self.send(b"Q", sql.encode() + b"\0")
        rows: list[tuple[str | None, ...]] = []
        failure: QueryFailed | None = None
        while True:
            kind, payload = self._receive(during_query=True)
            if kind == b"D":
                rows.append(_data_row(payload))
            elif kind == b"E":
                failure = _query_failed(payload)
            elif kind == b"Z":
                if failure is not None:
                    raise failure
                return rows

    def send(self, kind: bytes, payload: bytes) -> None:
        self._sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _receive(self, during_query: bool = False) -> tuple[bytes, bytes]:
        header = self._read(5)
        kind = header[:1]
        size = struct.unpack("!i", header[1:])[0] - 4
        if not 0 <= size <= _LONGEST_MESSAGE:
            raise NotHere(f"a reply that is not PostgreSQL's ({header!r})")
        payload = self._read(size)
        if kind == b"E" and not during_query:
            # Refused at start-up (wrong password, no such database...): asyncpg says it best.
            raise NotHere(f"the server refused the connection: {_query_failed(payload)}")
        return kind, payload

    def _read(self, size: int) -> bytes:
        # An offset into the bytes received, rather than deleting from the front of a buffer,
        # which would copy the rest of a large reply once per row.
        end = self._offset + size
        while len(self._buffer) < end:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self._buffer = self._buffer[self._offset :] + chunk
            self._offset, end = 0, size
        data = self._buffer[self._offset : end]
        self._offset = end
        return data

    def receive_authentication(self) -> tuple[int, bytes]:
        kind, payload = self._receive()
        while kind == b"N":  # a notice (PostgreSQL 18 warns of md5 logins) is not for us
            kind, payload = self._receive()
        if kind != b"R":
            raise NotHere(f"unexpected message {kind!r} during authentication")
        return struct.unpack("!i", payload[:4])[0], payload[4:]


def _secured(sock: socket.socket, endpoint: Endpoint, timeout: float) -> socket.socket:
    """TLS as asyncpg's sslmode does it, for the modes that check no certificate."""
    mode = endpoint.sslmode
    if mode == "disable":
        return sock
    if mode not in {"prefer", "require"}:
        raise NotHere(f"sslmode={mode}")
    if os.path.isdir(os.path.expanduser("~/.postgresql")):
        raise NotHere("client certificates or a root certificate in ~/.postgresql")
    sock.sendall(struct.pack("!ii", 8, _SSL_REQUEST))
    answer = sock.recv(1)
    if answer == b"N" and mode == "prefer":
        return sock
    if answer != b"S":
        raise NotHere("the server does not offer TLS")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    secured = context.wrap_socket(sock, server_hostname=endpoint.host)
    secured.settimeout(timeout)
    return secured


class _Authentication:
    def __init__(self, connection: Connection, endpoint: Endpoint) -> None:
        self._connection = connection
        self._endpoint = endpoint

    def run(self) -> None:
        code, data = self._connection.receive_authentication()
        if code == _AUTH_OK:
            return
        password = self._endpoint.password
        if password is None:
            raise NotHere("the server wants a password that may be in PGPASSWORD or a passfile")
        if code == _AUTH_CLEARTEXT:
            self._connection.send(b"p", password.encode() + b"\0")
        elif code == _AUTH_MD5:
            import hashlib

            inner = hashlib.md5((password + self._endpoint.user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + data[:4]).hexdigest()
            self._connection.send(b"p", b"md5" + outer.encode() + b"\0")
        elif code == _AUTH_SASL and b"SCRAM-SHA-256" in data.split(b"\0"):
            self._scram(password)
        else:
            raise NotHere(f"authentication method {code}")
        code, _ = self._connection.receive_authentication()
        if code != _AUTH_OK:
            raise NotHere(f"authentication did not end with success ({code})")

    def _scram(self, password: str) -> None:
        """SCRAM-SHA-256 without channel binding (RFC 5802, 7677), as asyncpg does it."""
        import base64
        import hashlib
        import hmac

        if not password.isascii():
            raise NotHere("a password that SASLprep may change")
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n=,r={nonce}"
        first = f"n,,{first_bare}".encode()
        self._connection.send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
        code, server_first = self._connection.receive_authentication()
        if code != _AUTH_SASL_CONTINUE:
            raise NotHere(f"unexpected SASL step {code}")
        fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
        if not fields["r"].startswith(nonce):
            raise NotHere("the server's SCRAM nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        final_bare = f"c=biws,r={fields['r']}"
        message = f"{first_bare},{server_first.decode()},{final_bare}".encode()
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = f"{final_bare},p={base64.b64encode(proof).decode()}".encode()
        self._connection.send(b"p", final)
        code, server_final = self._connection.receive_authentication()
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        expected = base64.b64encode(hmac.digest(server_key, message, "sha256")).decode()
        if code != _AUTH_SASL_FINAL or server_final.decode() != f"v={expected}":
            raise NotHere("the server did not prove it knows the password")


def _data_row(payload: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack_from("!h", payload)
    offset = 2
    values: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", payload, offset)
        offset += 4
        if size < 0:
            values.append(None)
        else:
            values.append(payload[offset : offset + size].decode())
            offset += size
    return tuple(values)


def _query_failed(payload: bytes) -> QueryFailed:
    fields = {item[:1]: item[1:].decode(errors="replace") for item in payload.split(b"\0") if item}
    return QueryFailed(fields.get(b"C", "?????"), fields.get(b"M", "unknown error"))
