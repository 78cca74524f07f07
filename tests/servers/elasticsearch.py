"""An Elasticsearch server for the tests: CLANDESTINO_TEST_ELASTICSEARCH_URL, or a real single node
started here, without Docker, from Elastic's own jars on Maven Central (the server, its Netty4 HTTP
module and the test framework's plug-in loader). tests/elasticsearch_node is the small Maven
project that launches it; Maven keeps the jars in ~/.m2, the build goes to its target/."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.launch import read_url, stop

__all__ = ["JAVA_HOME", "TEST_URL", "elasticsearch_server"]

TEST_URL = "CLANDESTINO_TEST_ELASTICSEARCH_URL"
# A JDK to run the node with; else JAVA_HOME if recent enough, else the newest in /usr/lib/jvm.
JAVA_HOME = "CLANDESTINO_TEST_ELASTICSEARCH_JAVA_HOME"

PROJECT = Path(__file__).resolve().parent.parent / "elasticsearch_node"
MAIN_CLASS = "clandestino.esnode.SingleNode"
MIN_JAVA = 21  # Elasticsearch 9 needs Java 21 or newer
BUILD_TIMEOUT = 900.0  # the first build downloads the jars (about 70 MB)
START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
LOG_TAIL = 40
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "--enable-native-access=ALL-UNNAMED",
    "--add-modules=jdk.incubator.vector",
)


@contextmanager
def elasticsearch_server(workdir: Path) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of a running node with security off."""
    given = os.environ.get(TEST_URL)
    if given:
        yield given
        return
    java_home = find_java_home()
    classpath = build_launcher(java_home)
    node_dir = workdir / "elasticsearch"
    tmp_dir = node_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    log_path = node_dir / "node.log"
    command = [
        str(java_home / "bin" / "java"),
        *JVM_OPTIONS,
        f"-Djava.io.tmpdir={tmp_dir}",
        "-cp",
        classpath,
        MAIN_CLASS,
        str(node_dir),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=node_dir,
        )
    try:
        yield read_url(process, log_path, time.monotonic() + START_TIMEOUT, "Elasticsearch")
    finally:
        stop(process, STOP_TIMEOUT)


def find_java_home() -> Path:
    """The JDK to build and run the node with: Java 21 or newer."""
    explicit = os.environ.get(JAVA_HOME)
    if explicit:
        home = Path(explicit)
        if (_java_major(home) or 0) < MIN_JAVA:
            raise RuntimeError(f"{JAVA_HOME}={explicit} is not a JDK {MIN_JAVA} or newer")
        return home
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (_java_major(Path(java_home)) or 0) >= MIN_JAVA:
        return Path(java_home)
    jvm_dir = Path("/usr/lib/jvm")
    homes = sorted(jvm_dir.iterdir()) if jvm_dir.is_dir() else []
    found = [(major, home) for home in homes if (major := _java_major(home)) is not None]
    usable = [(major, home) for major, home in found if major >= MIN_JAVA]
    if not usable:
        seen = ", ".join(f"{home} ({major})" for major, home in found) or "none"
        raise RuntimeError(
            f"Elasticsearch needs a JDK {MIN_JAVA} or newer; set {JAVA_HOME} (JDKs seen: {seen})"
        )
    return max(usable, key=lambda item: item[0])[1]


def _java_major(home: Path) -> int | None:
    """The feature version of the JDK at home, from its `release` file (None if not a JDK)."""
    try:
        release = (home / "release").read_text(errors="replace")
    except OSError:
        return None
    if not (home / "bin" / "javac").exists():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', release, re.MULTILINE)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def build_launcher(java_home: Path) -> str:
    """Compile the launcher if needed; return its class path (its classes and the jars in ~/.m2)."""
    target = PROJECT / "target"
    target.mkdir(exist_ok=True)
    with (target / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not _launcher_is_built(target):
            _run_maven(java_home, target)
        jars = (target / "classpath.txt").read_text().strip()
    return os.pathsep.join([str(target / "classes"), jars])


def _launcher_is_built(target: Path) -> bool:
    stamp = target / "launcher.stamp"
    classpath = target / "classpath.txt"
    if not stamp.exists() or not classpath.exists():
        return False
    built = stamp.stat().st_mtime
    inputs = [PROJECT / "pom.xml", *(PROJECT / "src").rglob("*")]
    if any(path.stat().st_mtime > built for path in inputs):
        return False
    return all(Path(jar).exists() for jar in classpath.read_text().strip().split(os.pathsep))


def _run_maven(java_home: Path, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to build the Elasticsearch launcher")
    env = {
        **os.environ,
        "JAVA_HOME": str(java_home),
        "PATH": f"{java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(PROJECT / "pom.xml"),
        "compile",
        "dependency:build-classpath",
        f"-Dmdep.outputFile={target / 'classpath.txt'}",
    ]
    try:
        result = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(
            f"building the Elasticsearch launcher took over {BUILD_TIMEOUT}s"
        ) from error
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL:])
        raise RuntimeError(f"building the Elasticsearch launcher failed:\n{output}")
    (target / "launcher.stamp").touch()
