"""What the OpenSearch backend adds to the contract suite: its own settings through a TLS and
password front (an HTTPS front of the real node, as for Elasticsearch), the `-cm` template's
AsyncOpenSearch, and a migration as OpenSearch teams write them: painless, `_reindex` into a new
index and an alias swapped onto it, on the node the suite starts (which carries painless and the
reindex module)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Project, step_lines
from tests.harness import OpenSearchHarness
from tests.servers.tls_front import TlsFront, tls_front

PASSWORD = "n0t:so@simple/"


@pytest.fixture
def osp(tmp_path: Path, opensearch_url: str) -> Iterator[Project]:
    harness = OpenSearchHarness(tmp_path / "backend", opensearch_url)
    root = tmp_path / "project"
    root.mkdir()
    yield Project(root, harness)
    harness.cleanup()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, opensearch_url: str) -> Iterator[TlsFront]:
    with tls_front(tmp_path_factory.mktemp("front"), opensearch_url, "deployer", PASSWORD) as f:
        yield f


def _harness(project: Project) -> OpenSearchHarness:
    assert isinstance(project.harness, OpenSearchHarness)
    return project.harness


def _through_front(front: TlsFront, **settings: str) -> dict[str, str]:
    return {
        "CLANDESTINO_OPENSEARCH_CONNECTION_STRING": front.url,
        "CLANDESTINO_OPENSEARCH_USER": front.user,
        "CLANDESTINO_OPENSEARCH_PASSWORD": front.password,
        **settings,
    }


def test_through_tls_and_a_password_certificates_are_verified_then_trusted(
    osp: Project, front: TlsFront
) -> None:
    names = [osp.add_effect(tag).stem for tag in ("one", "two")]

    refused = osp.cdt("-m", env=_through_front(front))

    assert refused.returncode == 3
    assert "OpenSearch at https://127.0.0.1" in refused.stderr
    assert "the TLS certificate was not accepted" in refused.stderr
    assert "CLANDESTINO_OPENSEARCH_CA_CERTS" in refused.stderr
    assert _harness(osp).effects() == []

    trusted = osp.cdt(
        "-m", env=_through_front(front, CLANDESTINO_OPENSEARCH_CA_CERTS=str(front.ca_file))
    )

    assert trusted.returncode == 0, trusted.stderr
    assert _harness(osp).effects() == ["one", "two"]
    assert _harness(osp).records() == names
    assert front.password not in trusted.stdout + trusted.stderr


def test_credentials_in_the_url_work_and_never_show(osp: Project, front: TlsFront) -> None:
    osp.add_effect("x")
    host = front.url.removeprefix("https://")
    url = f"https://{front.user}:{quote(front.password, safe='')}@{host}"

    result = osp.cdt(
        "-m",
        env={
            "CLANDESTINO_OPENSEARCH_CONNECTION_STRING": url,
            "CLANDESTINO_OPENSEARCH_VERIFY_CERTS": "false",
        },
    )

    assert result.returncode == 0, result.stderr
    assert _harness(osp).effects() == ["x"]
    assert front.password not in result.stdout + result.stderr
    assert quote(front.password, safe="") not in result.stdout + result.stderr


def test_a_wrong_password_is_exit_3_and_writes_nothing(osp: Project, front: TlsFront) -> None:
    osp.add_effect("x")
    env = _through_front(
        front,
        CLANDESTINO_OPENSEARCH_PASSWORD="wrong-one",
        CLANDESTINO_OPENSEARCH_CA_CERTS=str(front.ca_file),
    )

    result = osp.cdt("-m", env=env)

    assert result.returncode == 3
    assert "OpenSearch at https://127.0.0.1" in result.stderr
    assert "refused the credentials" in result.stderr
    assert "CLANDESTINO_OPENSEARCH_USER/CLANDESTINO_OPENSEARCH_PASSWORD" in result.stderr
    assert "wrong-one" not in result.stdout + result.stderr
    assert not _harness(osp).control_exists()


def test_an_unreachable_node_is_exit_3_within_the_timeout(osp: Project) -> None:
    osp.add_effect("x")
    started = time.monotonic()

    result = osp.cdt(
        "-m",
        env={
            "CLANDESTINO_OPENSEARCH_CONNECTION_STRING": "http://u:hidden@127.0.0.1:9",
            "CLANDESTINO_CONNECT_TIMEOUT": "2",
        },
    )

    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 15
    assert "cannot connect to OpenSearch at http://127.0.0.1:9" in result.stderr
    assert "hidden" not in result.stdout + result.stderr


def test_an_api_key_is_refused_as_opensearch_has_none(osp: Project) -> None:
    osp.add_effect("x")

    result = osp.cdt("-m", env={"CLANDESTINO_OPENSEARCH_API_KEY": "a2V5OnNlY3JldA=="})

    assert result.returncode == 2
    assert "OpenSearch has no API keys" in result.stderr
    assert "a2V5OnNlY3JldA==" not in result.stdout + result.stderr
    assert not _harness(osp).control_exists()


def test_the_opensearch_template_hands_out_an_async_opensearch(osp: Project) -> None:
    created = osp.cdt("-cm", "first", "opensearch")
    assert created.returncode == 0, created.stderr
    [path] = osp.migrations.glob("*_first.py")
    source = path.read_text()
    assert "from clandestino_opensearch.infra import OpenSearchInfra" in source
    seen = osp.root / "client-type"
    path.write_text(
        source.replace(
            "await client.info()",
            "await client.info()\n"
            # The run's own client, bound to the infra (an unbound infra has none).
            f"            open({str(seen)!r}, 'w').write(type(self.infra.client).__name__)",
        )
    )

    result = osp.cdt("-m")

    assert result.returncode == 0, result.stderr
    assert seen.read_text() == "AsyncOpenSearch"
    assert _harness(osp).records() == [path.stem]


REINDEX = """
from clandestino_interfaces import AbstractMigration
from clandestino_opensearch.infra import OpenSearchInfra

OLD, NEW, ALIAS = {old!r}, {new!r}, {alias!r}


class Migration(AbstractMigration):
    infra = OpenSearchInfra()

    async def up(self) -> None:
        async with self.infra.get_client() as client:
            fields = {{"sku": {{"type": "keyword"}}, "cents": {{"type": "long"}}}}
            await client.indices.create(index=NEW, body={{"mappings": {{"properties": fields}}}})
            cents = (
                "ctx._source.cents = Math.round(ctx._source.price * 100);"
                " ctx._source.remove('price')"
            )
            await client.reindex(
                body={{
                    "source": {{"index": OLD}},
                    "dest": {{"index": NEW}},
                    "script": {{"lang": "painless", "source": cents}},
                }},
                refresh=True,
                wait_for_completion=True,
            )
            upper = "ctx._source.sku = ctx._source.sku.toUpperCase()"
            await client.update_by_query(
                index=NEW, body={{"script": {{"lang": "painless", "source": upper}}}}, refresh=True
            )
            await client.indices.update_aliases(body={{"actions": [
                {{"remove": {{"index": OLD, "alias": ALIAS}}}},
                {{"add": {{"index": NEW, "alias": ALIAS}}}},
            ]}})

    async def down(self) -> None:
        async with self.infra.get_client() as client:
            await client.indices.update_aliases(body={{"actions": [
                {{"remove": {{"index": NEW, "alias": ALIAS}}}},
                {{"add": {{"index": OLD, "alias": ALIAS}}}},
            ]}})
            await client.indices.delete(index=NEW)
"""


def test_a_migration_reindexes_into_a_new_index_with_painless_and_swaps_the_alias(
    osp: Project,
) -> None:
    harness = _harness(osp)
    old, new, alias = (
        f"{harness.control}_p1",
        f"{harness.control}_p2",
        f"{harness.control}_products",
    )
    client = harness.client
    client.indices.create(index=old, body={"aliases": {alias: {}}})
    for number, (sku, price) in enumerate([("ab-1", 1.5), ("cd-2", 20.0), ("ef-3", 0.99)]):
        client.index(index=old, id=str(number), body={"sku": sku, "price": price}, refresh=True)
    step = osp.add(REINDEX.format(old=old, new=new, alias=alias), "reindex_products")
    try:
        result = osp.cdt("-m")

        assert result.returncode == 0, result.stdout + result.stderr
        assert step_lines(result.stdout) == [f"-> running {step.stem} ✅"]
        assert list(client.indices.get_alias(name=alias)) == [new]
        found = client.search(index=alias, body={"sort": [{"sku": "asc"}], "size": 10})
        documents = [hit["_source"] for hit in found["hits"]["hits"]]
        assert documents == [
            {"sku": "AB-1", "cents": 150},
            {"sku": "CD-2", "cents": 2000},
            {"sku": "EF-3", "cents": 99},
        ]
        assert harness.records() == [step.stem]

        back = osp.cdt("-rm", "-y")

        assert back.returncode == 0, back.stdout + back.stderr
        assert list(client.indices.get_alias(name=alias)) == [old]
        assert not client.indices.exists(index=new)
        assert harness.records() == []
    finally:
        client.indices.delete(index=f"{old},{new}", ignore_unavailable=True)
