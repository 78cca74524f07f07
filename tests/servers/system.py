"""What the tests need from the machine besides Python packages, checked before they start.

`make test` runs this first. Everything else the suite needs is a Python package (the PostgreSQL
server wheel, SecantusDB for MongoDB, trustme and aiohttp for the TLS front) or is started by
the tests themselves. The Elasticsearch node needs a JDK, Maven and the zstd library: when they
are missing, root with apt gets them installed here; anyone else gets one line naming the
package and the command, and exit status 1, before any test runs.

    python -m tests.servers.system
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from tests.servers.elasticsearch import TEST_URL
from tests.servers.maven_node import KINDS, find_java_home

__all__ = ["main", "missing"]

# The newest JDK any node line needs (Elasticsearch 9 and OpenSearch 3: 21); the older lines
# (Elasticsearch 8, OpenSearch 2) also run on 17, which Debian has.
MIN_JAVA = max(kind.min_java for kind in KINDS.values())


def _has_jdk() -> bool:
    try:
        for kind in KINDS.values():
            find_java_home(kind)
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class Need:
    what: str
    package: str  # Debian's package
    present: Callable[[], bool]


NEEDS = [
    Need("Maven (mvn)", "maven", lambda: shutil.which("mvn") is not None),
    Need("the zstd library", "libzstd1", lambda: ctypes.util.find_library("zstd") is not None),
    Need(f"a JDK {MIN_JAVA} or newer", f"openjdk-{MIN_JAVA}-jdk-headless", _has_jdk),
]


def missing() -> list[Need]:
    """What the Elasticsearch node lacks; nothing when the tests are given a node's URL."""
    if os.environ.get(TEST_URL):
        return []
    return [need for need in NEEDS if not need.present()]


def _apt_has(package: str) -> bool:
    policy = subprocess.run(
        ["apt-cache", "policy", package], capture_output=True, text=True, check=False
    ).stdout
    return "Candidate:" in policy and "Candidate: (none)" not in policy


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, check=True)


def _one_line(needs: list[Need]) -> str:
    """What is missing and the command that installs it, or where to get a JDK that apt lacks."""
    what = ", ".join(need.what for need in needs)
    from_apt = [need.package for need in needs if not need.package.startswith("openjdk")]
    jdk_too = len(from_apt) < len(needs)
    steps = [f"sudo apt-get install {' '.join(from_apt)}"] if from_apt else []
    if jdk_too:
        steps.append(
            "a JDK from https://adoptium.net under /usr/lib/jvm "
            "(or CLANDESTINO_TEST_JAVA_HOME_ES9 and the like, one per release line)"
        )
    elsewhere = f"; or give a node's URL in {TEST_URL}"
    return f"error: the Elasticsearch tests need {what}: {' and '.join(steps)}{elsewhere}"


def main() -> int:
    needs = missing()
    if not needs:
        return 0
    can_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if can_apt:
        if not all(_apt_has(need.package) for need in needs):
            subprocess.run(["apt-get", "update", "-qq"], check=False)
        installable = [need for need in needs if _apt_has(need.package)]
        if installable:
            print(f"installing {' '.join(need.package for need in installable)} with apt-get")
            _apt_install([need.package for need in installable])
        needs = missing()
    if needs:
        print(_one_line(needs), file=sys.stderr)
    return 1 if needs else 0


if __name__ == "__main__":
    raise SystemExit(main())
