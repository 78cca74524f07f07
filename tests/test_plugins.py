"""Backends plug in through the `clandestino.backends` entry-point group, built-ins included."""

from __future__ import annotations

import sqlite3
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

from tests.conftest import Project

PLUGIN = textwrap.dedent(
    """\
    from clandestino.backends import Backend


    def _create_store(settings, read_only):
        from clandestino_sqlite.store import SqliteStore

        store = SqliteStore(settings.cwd / "acme.db", "acme_records", read_only)
        store.description = "ACME (acme.db)"
        return store


    backend = Backend(
        name="acme",
        url_setting="ACME_PATH",
        template_module="acme_template",
        create_store=_create_store,
    )
    """
)


def _install_plugin(site: Path) -> None:
    """A distribution on PYTHONPATH, found by importlib.metadata like an installed one."""
    site.mkdir()
    (site / "acme_backend.py").write_text(PLUGIN)
    (site / "acme_template.py").write_text("# the acme template\n")
    info = site / "acme_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[clandestino.backends]\nacme = acme_backend:backend\n")


def test_the_built_in_backend_registers_through_the_entry_point_group() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="clandestino.backends")}
    assert names["sqlite"] == "clandestino_sqlite.backend:backend"


def test_a_third_party_backend_is_found_by_name_in_any_case(
    sqlite_project: Project, tmp_path: Path
) -> None:
    _install_plugin(tmp_path / "site")
    env = {"PYTHONPATH": str(tmp_path / "site"), "CLANDESTINO_MIGRATION_REPO": "Acme"}
    name = sqlite_project.add_effect("plugged").stem

    result = sqlite_project.cdt("-m", env=env)
    created = sqlite_project.cdt("-cm", "next", "ACME", env=env)

    assert result.returncode == 0, result.stderr
    assert "Migration repository mode is: ACME (acme.db)" in result.stdout
    records = sqlite3.connect(sqlite_project.root / "acme.db").execute(
        "SELECT migration_name FROM acme_records"
    )
    assert records.fetchall() == [(name,)]
    assert created.returncode == 0, created.stderr
    [new_file] = sqlite_project.migrations.glob("migration_*_next.py")
    assert new_file.read_text() == "# the acme template\n"


def test_an_unknown_backend_lists_what_is_installed(sqlite_project: Project) -> None:
    result = sqlite_project.cdt("-m", env={"CLANDESTINO_MIGRATION_REPO": "nosuch"})

    assert result.returncode == 2
    assert "use one of " in result.stderr
    assert "SQLITE" in result.stderr and "POSTGRES" in result.stderr
