"""Which PostgreSQL URLs the blocking reader of a no-op run takes, and which it leaves to asyncpg.

It must take a URL only when it connects exactly where asyncpg would; whatever it leaves, asyncpg
reads (see test_postgres.py for both on a real server).
"""

from __future__ import annotations

import pytest

from clandestino_postgres.wire import Endpoint, NotHere


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://app:p%40ss%3Aw@db.example.com:6543/orders",
            Endpoint("db.example.com", 6543, "app", "orders", "p@ss:w", "prefer"),
        ),
        (
            "postgres://app@/orders?host=/run/postgresql&port=5433",
            Endpoint("/run/postgresql", 5433, "app", "orders", None, "prefer"),
        ),
        (
            "postgresql://app@%2Frun%2FPostgreSQL/orders",
            Endpoint("/run/PostgreSQL", 5432, "app", "orders", None, "prefer"),
        ),
        (
            "postgresql://app@[::1]:5433/orders?sslmode=disable",
            Endpoint("::1", 5433, "app", "orders", None, "disable"),
        ),
        # asyncpg looks an empty password up in PGPASSWORD and the passfile, as a missing one.
        ("postgresql://app:@h/orders", Endpoint("h", 5432, "app", "orders", None, "prefer")),
        # The query fills in only what the rest of the URL leaves out, as in asyncpg.
        (
            "postgresql://app@h:5000/orders?port=6000&user=other&dbname=x&password=pw",
            Endpoint("h", 5000, "app", "orders", "pw", "prefer"),
        ),
    ],
)
def test_urls_it_reads_give_the_same_address_as_asyncpg(url: str, expected: Endpoint) -> None:
    assert Endpoint.from_url(url, {}) == expected


@pytest.mark.parametrize(
    ("url", "environ"),
    [
        ("postgresql://app@h/orders?application_name=x", {}),
        ("postgresql://app@h/orders?sslrootcert=/ca.pem", {}),
        ("postgresql://app@h/orders?target_session_attrs=read-write", {}),
        ("postgresql://h/orders", {}),
        ("postgresql://app@h", {}),
        ("postgresql://app@/orders", {}),
        ("postgresql://app@h1,h2/orders", {}),
        ("postgresql://app@/orders?host=/run/postgresql&port=5432,5433", {}),
        ("postgresql://app@/orders?host=/run/postgresql&port=fifty", {}),
        ("postgresql://app@h/orders", {"PGSSLMODE": "verify-full"}),
        ("postgresql://app@h/orders", {"PGSSLROOTCERT": "/ca.pem"}),
        ("postgresql://app@h/orders", {"PGPORT": "6000"}),
    ],
)
def test_urls_whose_address_depends_on_more_are_left_to_asyncpg(
    url: str, environ: dict[str, str]
) -> None:
    with pytest.raises(NotHere):
        Endpoint.from_url(url, environ)


def test_a_port_in_the_url_wins_over_pgport() -> None:
    assert Endpoint.from_url("postgresql://a@h:7000/d", {"PGPORT": "6000"}).port == 7000
