"""What only Elasticsearch has: the explicit mapping, the original's string times, a read of more
records than one page, the lease lock's holder, certificates, credentials and connection errors.

TLS and passwords are tested through an HTTPS front of the real node (tests/servers/tls_front.py),
since the node the suite starts carries no security module."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clandestino.secret import Secret
from tests.conftest import Project
from tests.harness import ElasticsearchHarness
from tests.servers.tls_front import TlsFront, tls_front

PASSWORD = "n0t:so@simple/"


@pytest.fixture
def es(tmp_path: Path, elasticsearch_url: str) -> Iterator[Project]:
    harness = ElasticsearchHarness(tmp_path / "backend", elasticsearch_url)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[TlsFront]:
    with tls_front(tmp_path_factory.mktemp("front"), elasticsearch_url, "deployer", PASSWORD) as f:
        yield f


def _harness(project: Project) -> ElasticsearchHarness:
    assert isinstance(project.harness, ElasticsearchHarness)
    return project.harness


def test_a_new_control_index_has_an_explicit_mapping_and_the_originals_shapes(
    es: Project,
) -> None:
    name = es.add_effect("x").stem

    assert es.cdt("-m").returncode == 0

    harness = _harness(es)
    mapping = harness.client.indices.get_mapping(index=harness.control)
    properties = mapping[harness.control]["mappings"]["properties"]
    assert properties["name"] == {"type": "keyword"}
    assert properties["created_at"] == {"type": "keyword"}
    assert harness.client.get(index=harness.control, id="init")["_source"] == {
        "name": "clandestino init"
    }
    record = harness.client.get(index=harness.control, id=name)["_source"]
    assert record["name"] == name
    # The original wrote str(datetime.utcnow()); so do we, so that it can still read them.
    assert datetime.fromisoformat(record["created_at"]).tzinfo is None


def test_more_records_than_one_page_are_all_read(es: Project) -> None:
    from elasticsearch.helpers import bulk

    harness = _harness(es)
    on_disk = es.add_effect("on_disk").stem
    old = [f"migration_2000_01_01_00_00_00_old{index:05d}" for index in range(10_050)]
    harness.write_original_control([on_disk])
    bulk(
        harness.client,
        (
            {"_index": harness.control, "_id": n, "name": n, "created_at": "2000-01-01 00:00:00"}
            for n in old
        ),
        refresh=True,
    )

    result = es.cdt("-lm", "--json")

    assert result.returncode == 0, result.stderr
    states = [json.loads(line) for line in result.stdout.splitlines()]
    missing = [state["name"] for state in states if state.get("file_missing")]
    assert sorted(missing) == old
    assert next(s for s in states if s.get("name") == on_disk)["applied"] is True


def test_a_held_lock_names_its_holder_and_times_out(es: Project) -> None:
    harness = _harness(es)
    es.add_effect("blocked")
    now = datetime.now(UTC)
    harness.client.index(
        index=f"{harness.control}_lock",
        id="migration-lock",
        document={
            "owner": "ci-runner-7/4242",
            "token": "theirs",
            "since": now.isoformat(),
            "until": (now + timedelta(minutes=5)).isoformat(),
        },
        refresh=True,
    )

    result = es.cdt("-m", env={"CLANDESTINO_LOCK_TIMEOUT": "1"})

    assert result.returncode == 3
    assert "waiting for the lock held by ci-runner-7/4242 since" in result.stdout
    assert "stayed held by ci-runner-7/4242 for more than 1 s" in result.stderr
    assert harness.effects() == []


def _through_front(es: Project, front: TlsFront, **settings: str) -> dict[str, str]:
    return {
        "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": front.url,
        "CLANDESTINO_ELASTICSEARCH_USER": front.user,
        "CLANDESTINO_ELASTICSEARCH_PASSWORD": front.password,
        **settings,
    }


def test_certificates_are_verified_by_default(es: Project, front: TlsFront) -> None:
    es.add_effect("tls")

    result = es.cdt("-m", env=_through_front(es, front))

    assert result.returncode == 3
    assert "the TLS certificate was not accepted" in result.stderr
    assert "CLANDESTINO_ELASTICSEARCH_CA_CERTS" in result.stderr
    assert "CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS=false" in result.stderr
    assert _harness(es).effects() == []


@pytest.mark.parametrize("trust", ["ca_file", "no_verification"])
def test_a_trusted_or_unverified_certificate_works(
    es: Project, front: TlsFront, trust: str
) -> None:
    es.add_effect("tls")
    setting = (
        {"CLANDESTINO_ELASTICSEARCH_CA_CERTS": str(front.ca_file)}
        if trust == "ca_file"
        else {"CLANDESTINO_ELASTICSEARCH_VERIFY_CERTS": "false"}
    )

    result = es.cdt("-m", env=_through_front(es, front, **setting))

    assert result.returncode == 0, result.stderr
    assert _harness(es).effects() == ["tls"]


def test_credentials_in_the_url_work_and_never_show(es: Project, front: TlsFront) -> None:
    from urllib.parse import quote

    es.add_effect("x")
    host = front.url.removeprefix("https://")
    url = f"https://{front.user}:{quote(front.password, safe='')}@{host}"

    result = es.cdt(
        "-m",
        env={
            "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url,
            "CLANDESTINO_ELASTICSEARCH_CA_CERTS": str(front.ca_file),
        },
    )

    assert result.returncode == 0, result.stderr
    assert front.password not in result.stdout + result.stderr
    assert quote(front.password, safe="") not in result.stdout + result.stderr


def test_a_wrong_password_is_exit_3(es: Project, front: TlsFront) -> None:
    es.add_effect("x")
    env = _through_front(
        es,
        front,
        CLANDESTINO_ELASTICSEARCH_PASSWORD="wrong-one",
        CLANDESTINO_ELASTICSEARCH_CA_CERTS=str(front.ca_file),
    )

    result = es.cdt("-m", env=env)

    assert result.returncode == 3
    assert "refused the credentials" in result.stderr
    assert "wrong-one" not in result.stdout + result.stderr


def test_an_unreachable_node_is_exit_3_within_the_timeout(es: Project) -> None:
    es.add_effect("x")
    started = time.monotonic()

    result = es.cdt(
        "-m",
        env={
            "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": "http://u:hidden@127.0.0.1:9",
            "CLANDESTINO_CONNECT_TIMEOUT": "2",
        },
    )

    assert result.returncode == 3
    assert time.monotonic() - started < 15
    assert "cannot connect to Elasticsearch at http://127.0.0.1:9" in result.stderr
    assert "hidden" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:9200", "must be an http:// or https:// URL"),
        ("http://host:port", "is malformed"),
    ],
)
def test_a_malformed_url_is_exit_2(es: Project, url: str, message: str) -> None:
    es.add_effect("x")

    result = es.cdt("-m", env={"CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": url})

    assert result.returncode == 2
    assert message in result.stderr


def test_an_api_key_setting_is_sent_as_the_api_key(tmp_path: Path) -> None:
    from clandestino.config import load_settings
    from clandestino_elasticsearch.connect import ElasticsearchTarget

    settings = load_settings(
        tmp_path,
        environ={
            "CLANDESTINO_ELASTICSEARCH_CONNECTION_STRING": "https://es.internal:9200",
            "CLANDESTINO_ELASTICSEARCH_API_KEY": "a2V5OnNlY3JldA==",
        },
    )

    target = ElasticsearchTarget.from_settings(settings)

    # Kept as a Secret (printed masked) until the client is built.
    assert target.options == {"verify_certs": True, "api_key": Secret("a2V5OnNlY3JldA==")}
    assert "a2V5OnNlY3JldA" not in repr(target.options)
    assert target.where == "https://es.internal:9200"


@pytest.fixture(scope="module")
def other_major_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A node whose major version is not the installed client's (an 8.19 node beside the 9.x
    client, a 9.5 node beside the 8.x one), and its version, read without a client."""
    import elasticsearch

    from tests.servers.maven_node import KINDS, start_nodes

    given = os.environ.get("CLANDESTINO_TEST_ELASTICSEARCH_OTHER_URL")
    if given:
        yield given, _plain_info(given)["version"]["number"]
        return
    kind = KINDS["es8" if elasticsearch.__versionstr__.startswith("9.") else "es9"]
    with start_nodes(kind, tmp_path_factory.mktemp("other-major")) as nodes:
        yield nodes[0].url, _plain_info(nodes[0].url)["version"]["number"]


def _plain_info(url: str, path: str = "/") -> dict[str, Any]:
    with urllib.request.urlopen(url + path, timeout=30) as answer:
        return dict(json.load(answer))


def test_a_node_of_another_major_version_than_the_client_is_exit_2_with_the_fix(
    tmp_path: Path, other_major_node: tuple[str, str]
) -> None:
    import elasticsearch

    url, server_version = other_major_node
    harness = ElasticsearchHarness(tmp_path / "backend", url)
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, harness)
    project.add_effect("never")
    major = int(server_version.split(".")[0])

    result = project.cdt("-m")

    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert f"runs {server_version}" in errors[0]
    assert f"elasticsearch-py {elasticsearch.__versionstr__}" in errors[0]
    assert f"pip install 'elasticsearch[async]>={major},<{major + 1}'" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    with pytest.raises(urllib.error.HTTPError) as missing:
        _plain_info(url, f"/{harness.control}")
    assert missing.value.code == 404  # nothing written: no control index
    harness.client.close()
