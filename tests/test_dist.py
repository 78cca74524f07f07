"""What would be published: the sdist and the wheel `python -m build` makes, and twine's check."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "clandestino",
    "clandestino_sqlite",
    "clandestino_postgres",
    "clandestino_mongo",
    "clandestino_elasticsearch",
    "clandestino_minio",
    "clandestino_qdrant",
    "clandestino_opensearch",
]
# Never shipped: the tests, the benchmark and the tools' virtualenvs it makes, the Java launcher of
# the test nodes and their build output, caches, virtualenvs, databases.
FORBIDDEN_PARTS = {"tests", "bench", ".envs", "elasticsearch_node", "opensearch_node", "target"}
FORBIDDEN_PARTS |= {"__pycache__"}
FORBIDDEN_SUFFIXES = {".pyc", ".class", ".jar", ".db", ".java"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _wheel_names(dist: Path) -> list[str]:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _sdist_names(dist: Path) -> list[str]:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        # Each name starts with clandestino-<version>/.
        return [name.partition("/")[2] for name in archive.getnames()]


def _forbidden(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if FORBIDDEN_PARTS & set(Path(name).parts) or Path(name).suffix in FORBIDDEN_SUFFIXES
    ]


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_distributions_carry_the_packages_templates_and_types_only(
    dist: Path, kind: str
) -> None:
    names = _wheel_names(dist) if kind == "wheel" else _sdist_names(dist)

    assert _forbidden(names) == []
    assert any(name.endswith("clandestino/templates/empty.py") for name in names), names
    for package in PACKAGES:
        assert any(name.endswith(f"{package}/py.typed") for name in names), package
        assert any(name.endswith(f"{package}/__init__.py") for name in names), package
    if kind == "sdist":
        assert {"README.md", "CHANGELOG.md", "pyproject.toml", "LICENSE"} <= set(names)


def test_the_wheel_declares_the_command_and_the_backends(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [entry_points] = [
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode()
    assert "cdt = clandestino.cli:main" in text
    backends = ("sqlite", "postgres", "mongo", "elasticsearch", "minio", "qdrant", "opensearch")
    for backend in backends:
        assert f"{backend} = clandestino_{backend}.backend:backend" in text


def test_twine_accepts_both(dist: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout
