"""The virtualenvs of the tools compared, under bench/.envs/ (git-ignored), made on first use.

Each is remade only when what it should hold changes: its requirements, or for this project the
source files, whose digest is kept beside the environment so that every run measures the tree
as it is.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from bench.tools import Tool

__all__ = ["ENVS", "REPO", "ensure_env"]

REPO = Path(__file__).resolve().parent.parent
ENVS = Path(__file__).resolve().parent / ".envs"
_SOURCES = (
    "clandestino",
    "clandestino_sqlite",
    "clandestino_postgres",
    "clandestino_mongo",
    "clandestino_elasticsearch",
)


def _source_digest() -> str:
    digest = hashlib.sha256()
    for package in _SOURCES:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _wanted(tool: type[Tool]) -> str:
    lines = [requirement.format(repo=REPO) for requirement in tool.requirements]
    if any("{repo}" in requirement for requirement in tool.requirements):
        # pyproject.toml apart from the code: a change of dependencies needs a full install.
        pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
        lines.append(f"pyproject {pyproject}")
        lines.append(f"source {_source_digest()}")
    lines.append(f"python {sys.version.split()[0]}")
    return "\n".join(lines) + "\n"


def ensure_env(tool: type[Tool]) -> Path:
    """The virtualenv of `tool`, created or brought up to date (quietly, with pip)."""
    venv = ENVS / tool.key
    stamp = venv / ".bench-installed"
    wanted = _wanted(tool)
    had = stamp.read_text() if stamp.is_file() else ""
    if had == wanted:
        return venv
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    requirements = [requirement.format(repo=REPO) for requirement in tool.requirements]
    if _without_source(had) == _without_source(wanted):
        # Only this project's files changed: reinstall it alone.
        print(f"reinstalling this project into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(REPO)], check=True)
    else:
        print(f"setting up {venv} ...", file=sys.stderr, flush=True)
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, *requirements], check=True)
    stamp.write_text(wanted)
    return venv


def _without_source(stamp: str) -> list[str]:
    return [line for line in stamp.splitlines() if not line.startswith("source ")]
