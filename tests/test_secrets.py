"""No secret, of any length or in any encoding, in what `cdt` prints: plain, --json or --debug.

Secrets are masked where they are formed (`clandestino.secret`); the redaction net under that
catches what drivers put in their own texts, and masks only where a secret can stand, so a
password that is also a common word (`postgres`) leaves `postgresql://`, install hints and
migration names alone. Each password here is the real password of a role on the session's
PostgreSQL server, which checks it (scram), and runs go through a real `cdt`.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import pytest

from clandestino.redact import RedactingStream, secrets_in
from clandestino.secret import ConnectionString, Secret, mask_url
from tests.conftest import CDT, clean_environ
from tests.harness import _pg
from tests.servers.postgres import PASSWORD_ROLE

# Distinctive ones must appear nowhere; word-like ones nowhere a credential stands.
DISTINCTIVE = [
    "Tr0ub4dor&3",
    "p/ss@w:rd",
    "50%+off=yes",
    "with space 9",
    "quo'te\"dq1",
    "pässwörd✓7",
    "密码12345",
    "back\\slash1",
]
WORD_LIKE = ["postgres", "admin", "a", "ab", "xyz", "clandestino"]
MODES = [("-m",), ("-m", "--json"), ("-lm", "--debug"), ("-m", "--debug", "--json")]

MIGRATION = textwrap.dedent(
    """\
    from clandestino_interfaces import AbstractMigration
    from clandestino_postgres.infra import PostgresInfra


    class Migration(AbstractMigration):
        infra = PostgresInfra()

        async def up(self) -> None:
            async with self.infra.connection() as conn:
                await conn.execute("CREATE TABLE postgres_things (id int)")

        async def down(self) -> None:
            async with self.infra.connection() as conn:
                await conn.execute("DROP TABLE postgres_things")
    """
)
NAME = "migration_2024_01_01_00_00_01_postgres_things"


def forms(secret: str, user: str) -> set[str]:
    """Every form a secret may be printed in, computed here independently of the code."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
    }


def assert_hidden(output: str, secret: str, user: str) -> None:
    for form in forms(secret, user):
        if secret in DISTINCTIVE:
            assert form not in output, f"{form!r} printed:\n{output}"
        else:
            for place in (f":{form}@", f"={form}\n", f"={form} ", f"'{form}'", f'"{form}"'):
                assert place not in output, f"{place!r} printed:\n{output}"


@pytest.fixture
def owned_database(postgres_url: str) -> str:
    """A fresh database owned by the password-checked role (so it may create tables)."""
    name = f"secrets_{uuid.uuid4().hex[:10]}"

    async def create(connection: Any) -> None:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", PASSWORD_ROLE
        )
        if not exists:
            await connection.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN")
        await connection.execute(f'CREATE DATABASE "{name}" OWNER {PASSWORD_ROLE}')

    _pg(postgres_url, create)
    return name


def _set_password(postgres_url: str, password: str) -> None:
    escaped = password.replace("'", "''")

    async def alter(connection: Any) -> None:
        await connection.execute(f"ALTER ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{escaped}'")

    _pg(postgres_url, alter)


def _url(admin_url: str, database: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{PASSWORD_ROLE}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


def _cdt(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CDT, *args],
        cwd=folder,
        env={**clean_environ(), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("password", DISTINCTIVE + WORD_LIKE)
def test_no_password_is_printed_by_any_run_on_postgres(
    tmp_path: Path, postgres_url: str, owned_database: str, password: str
) -> None:
    _set_password(postgres_url, password)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / f"{NAME}.py").write_text(MIGRATION)
    url = _url(postgres_url, owned_database, password)
    env = {"CLANDESTINO_MIGRATION_REPO": "POSTGRES", "CLANDESTINO_POSTGRES_CONNECTION_STRING": url}
    runs = {args: _cdt(tmp_path, *args, env=env) for args in MODES}
    missing_db = {"CLANDESTINO_POSTGRES_CONNECTION_STRING": url.replace(owned_database, "nodb")}
    runs[("-m", "--debug", "(missing database)")] = _cdt(
        tmp_path, "-m", "--debug", env={**env, **missing_db}
    )

    assert runs[("-m",)].returncode == 0, runs[("-m",)].stderr
    for args, result in runs.items():
        output = result.stdout + result.stderr
        assert_hidden(output, password, PASSWORD_ROLE)
        assert "***ql" not in output, output
        assert "Traceback" not in output or "--debug" in args, output
    listing = runs[("-lm", "--debug")].stdout
    assert NAME in listing, listing
    assert "postgresql://" in runs[("-m",)].stdout + runs[("-m",)].stderr


@pytest.mark.parametrize("password", ["qz", "s3cr3t!", "postgres"])
@pytest.mark.parametrize(
    ("setting", "template"),
    [
        ("CLANDESTINO_POSTGRES_CONNECTION_STRING", "postgresql:/u:{pw}@127.0.0.1:9/db"),
        ("CLANDESTINO_MONGO_CONNECTION_STRING", "mongodb:/u:{pw}@127.0.0.1:9/db"),
        ("CLANDESTINO_MONGO_CONNECTION_STRING", "mongodb:u:{pw}@127.0.0.1:9/db"),
        ("CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING", "u:{pw}@127.0.0.1:9"),
        ("CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING", "http://u:{pw}@127.0.0.1:bad"),
    ],
)
def test_malformed_urls_are_refused_without_their_password(
    tmp_path: Path, setting: str, template: str, password: str
) -> None:
    backend = setting.split("_")[1]
    env = {
        "CLANDESTINO_MIGRATION_REPO": backend,
        setting: template.format(pw=password),
        "CLANDESTINO_CONNECT_TIMEOUT": "1",
    }
    (tmp_path / "migrations").mkdir()
    for args in MODES:
        result = _cdt(tmp_path, *args, env=env)
        output = result.stdout + result.stderr
        assert result.returncode in {2, 3}, output
        assert f":{password}@" not in output and f"{password}@" not in output, output
        if password != "postgres":
            assert password not in output, output


def test_a_mongodb_session_token_is_not_printed(tmp_path: Path) -> None:
    token = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"
    url = (
        "mongodb://AKIAEXAMPLE:s3cretKey9@127.0.0.1:9/db?authMechanism=MONGODB-AWS"
        f"&authSource=$external&authMechanismProperties=AWS_SESSION_TOKEN:{token}"
    )
    env = {
        "CLANDESTINO_MIGRATION_REPO": "MONGO",
        "CLANDESTINO_MONGO_CONNECTION_STRING": url,
        "CLANDESTINO_CONNECT_TIMEOUT": "1",
    }
    (tmp_path / "migrations").mkdir()
    for args in MODES:
        result = _cdt(tmp_path, *args, env=env)
        output = result.stdout + result.stderr
        assert result.returncode in {2, 3}, output
        for secret in (token, quote(token, safe=""), "s3cretKey9"):
            assert secret not in output, output


def test_elasticsearch_credentials_are_not_printed_by_a_refusing_node(
    tmp_path: Path, elasticsearch_url: str
) -> None:
    """The node is real; the credentials are sent as basic auth (and an API key)."""
    parts = urlsplit(elasticsearch_url)
    url = urlunsplit(parts._replace(netloc=f"elastic:Pa55%2Fw0rd@{parts.netloc}"))
    env = {
        "CLANDESTINO_MIGRATION_REPO": "ELASTICSEARCH",
        "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url,
        "CLANDESTINO_ELASTICSEARCH_API_KEY": "a2V5aWQ6a2V5c2VjcmV0",
        "CLANDESTINO_CONTROL_TABLE": f"secrets_{uuid.uuid4().hex[:8]}",
    }
    (tmp_path / "migrations").mkdir()
    for args in MODES:
        output = "".join(_cdt(tmp_path, *args, env=env).__dict__[k] for k in ("stdout", "stderr"))
        for secret in (*forms("Pa55/w0rd", "elastic"), "Pa55%2Fw0rd", "a2V5aWQ6a2V5c2VjcmV0"):
            assert secret not in output, output


# The masked values and the net, directly ------------------------------------------------------


def test_masked_values_render_masked_everywhere() -> None:
    secret = Secret("hunter2")
    url = ConnectionString("mongodb://u:hunter2@h/db?authMechanismProperties=AWS_SESSION_TOKEN:t")
    for rendered in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r:>20}",
        json.dumps({"s": secret, "u": url}, default=str),
        repr(url),
        str(url),
        f"{url}",
        repr([secret, url]),
    ):
        assert "hunter2" not in rendered and "AWS_SESSION_TOKEN:t" not in rendered, rendered
    assert secret.reveal() == "hunter2" and url.reveal().startswith("mongodb://u:hunter2@")
    assert url.masked == "mongodb://u:***@h/db?authMechanismProperties=***"


@pytest.mark.parametrize(
    ("given", "masked"),
    [
        (
            "postgresql://postgres:postgres@localhost/postgres",
            "postgresql://postgres:***@localhost/postgres",
        ),
        ("postgresql:/u:pw@h/db", "postgresql:/u:***@h/db"),
        ("mongodb://u:p@ss/w@h:1,h2:2/db", "mongodb://u:***@h:1,h2:2/db"),
        ("u:pw@host:9200", "u:***@host:9200"),
        ("host=h password='a b' dbname=d", "host=h password=*** dbname=d"),
        ("http://h:9200/?api_key=abc", "http://h:9200/?api_key=***"),
        ("localhost:9200", "localhost:9200"),
    ],
)
def test_mask_url_hides_the_password_of_malformed_urls_too(given: str, masked: str) -> None:
    assert mask_url(given) == masked


def _net(url: str, text: str) -> str:
    stream = io.StringIO()
    RedactingStream(stream, secrets_in({"CLANDESTINO_POSTGRES_CONNECTION_STRING": url})).write(text)
    return stream.getvalue()


def test_the_net_leaves_a_common_word_password_where_it_is_a_word() -> None:
    url = "postgresql://app:postgres@db:5432/app"
    kept = (
        "POSTGRES (postgresql://app:***@db:5432/app)\n"
        "hint: pip install 'clandestino[postgres]'\n"
        "-> running migration_2024_01_01_00_00_01_postgres_setup\n"
    )
    assert _net(url, kept) == kept
    assert _net(url, "dsn postgresql://app:postgres@db") == "dsn postgresql://app:***@db"
    assert _net(url, 'password="postgres"') == 'password="***"'


@pytest.mark.parametrize("password", ["a", "p/ss", "p@ss", "50%", "a+b=c", "sp ace", "ü✓"])
def test_the_net_masks_encoded_forms_of_any_length(password: str) -> None:
    url = f"postgresql://app:{quote(password, safe='')}@db/app"
    basic = base64.b64encode(f"app:{password}".encode()).decode()
    for text in (
        f"x://app:{password}@db",
        f"x://app:{quote(password, safe='')}@db",
        f"password={quote_plus(password)}\n",
        f'"password": "{json.dumps(password)[1:-1]}"',
        f"password={password!r}",
        f"Authorization: Basic {basic}\n",
    ):
        assert _net(url, text).count("***") == 1, (text, _net(url, text))
