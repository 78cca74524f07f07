"""Search-engine nodes for the tests, without Docker: each engine's own jars from Maven Central,
started in-process by a small Maven project (tests/elasticsearch_node, tests/opensearch_node) that
prints `URL http://127.0.0.1:PORT` once the node answers and stops when its stdin closes.

A NodeKind names one release line (its Maven profile, the JDKs it runs on); `start_nodes` builds
its launcher once (then offline, from ~/.m2) and starts one node or a cluster of several."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.launch import read_url, stop

__all__ = ["KINDS", "Node", "NodeKind", "find_java_home", "kind_from_env", "start_nodes"]

TESTS = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 900.0  # the first build downloads the jars (70 to 150 MB)
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
)
# A cluster's nodes are smaller: three of them share the machine with everything else.
CLUSTER_HEAP = ("-Xms256m", "-Xmx512m")


@dataclass(frozen=True)
class NodeKind:
    name: str  # as CLANDESTINO_TEST_<ENGINE>_NODE names it: es9, es8, os2, os3
    engine: str  # for messages
    project: Path
    line_property: str  # the Maven property that picks the release line's profile
    main_class: str
    min_java: int
    max_java: int | None = None  # the newest JDK the line is known to run on
    jvm_options: tuple[str, ...] = ()

    @property
    def target(self) -> Path:
        return self.project / "target" / self.name


_ES = TESTS / "elasticsearch_node"
_OS = TESTS / "opensearch_node"
_ES_JVM = ("--enable-native-access=ALL-UNNAMED", "--add-modules=jdk.incubator.vector")
KINDS = {
    kind.name: kind
    for kind in (
        NodeKind("es9", "Elasticsearch 9.5", _ES, "es.line", "clandestino.esnode.SingleNode", 21,
                 jvm_options=_ES_JVM),
        NodeKind("es8", "Elasticsearch 8.19", _ES, "es.line", "clandestino.esnode.SingleNode", 17,
                 jvm_options=_ES_JVM),
        NodeKind("os2", "OpenSearch 2.19", _OS, "os.line", "clandestino.osnode.SingleNode", 17,
                 max_java=21),
        NodeKind("os3", "OpenSearch 3.8", _OS, "os.line", "clandestino.osnode.SingleNode", 21),
    )
}  # fmt: skip


def kind_from_env(variable: str, default: str) -> NodeKind:
    """The node kind a setting names (CLANDESTINO_TEST_ELASTICSEARCH_NODE=es8, ...)."""
    name = os.environ.get(variable) or default
    if name not in KINDS:
        raise RuntimeError(f"{variable}={name!r}: use one of {', '.join(sorted(KINDS))}")
    return KINDS[name]


@dataclass
class Node:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """Kill the node's JVM at once (SIGKILL), as a crashed machine would go."""
        self.process.kill()
        self.process.wait()


@contextmanager
def start_nodes(kind: NodeKind, workdir: Path, count: int = 1) -> Iterator[list[Node]]:
    """Start `count` nodes of `kind` (one: single-node discovery; more: one cluster, green)."""
    java_home = find_java_home(kind)
    classpath = build_launcher(kind, java_home)
    names = [f"node-{index}" for index in range(count)]
    ports = [_free_port() for _ in names]
    prefix = kind.line_property.split(".")[0] + "node"  # esnode.*, osnode.*
    cluster = [
        f"-D{prefix}.seed.hosts=" + ",".join(f"127.0.0.1:{port}" for port in ports),
        f"-D{prefix}.initial.masters=" + ",".join(names),
    ]
    with ExitStack() as stack:
        started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        for name, port in zip(names, ports, strict=True):
            node_dir = workdir / kind.name / name
            tmp_dir = node_dir / "tmp"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            log_path = node_dir / "node.log"
            node_options = [f"-D{prefix}.name={name}"]
            if count > 1:
                node_options += [f"-D{prefix}.transport.port={port}", *cluster, *CLUSTER_HEAP]
            command = [
                str(java_home / "bin" / "java"),
                *JVM_OPTIONS,
                *kind.jvm_options,
                *node_options,
                f"-Djava.io.tmpdir={tmp_dir}",
                "-cp",
                classpath,
                kind.main_class,
                str(node_dir),
            ]
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=node_dir
                )
            stack.callback(stop, process, STOP_TIMEOUT)
            started.append((name, process, log_path))
        deadline = time.monotonic() + START_TIMEOUT
        nodes = [
            Node(name, read_url(process, log, deadline, f"{kind.engine} {name}"), process, log)
            for name, process, log in started
        ]
        yield nodes


def find_java_home(kind: NodeKind) -> Path:
    """A JDK the line runs on: CLANDESTINO_TEST_JAVA_HOME_<KIND>, else the oldest fitting JDK in
    /usr/lib/jvm (the one the line is most tested on), else JAVA_HOME if it fits."""
    variable = f"CLANDESTINO_TEST_JAVA_HOME_{kind.name.upper()}"
    explicit = os.environ.get(variable)
    if explicit:
        home = Path(explicit)
        if not _fits(kind, _java_major(home)):
            raise RuntimeError(f"{variable}={explicit} is not a JDK {kind.min_java} or newer")
        return home
    jvm_dir = Path("/usr/lib/jvm")
    homes = sorted(jvm_dir.iterdir()) if jvm_dir.is_dir() else []
    found = [(major, home) for home in homes if (major := _java_major(home)) is not None]
    usable = [(major, home) for major, home in found if _fits(kind, major)]
    if usable:
        return min(usable, key=lambda item: item[0])[1]
    java_home = os.environ.get("JAVA_HOME")
    if java_home and _fits(kind, _java_major(Path(java_home))):
        return Path(java_home)
    seen = ", ".join(f"{home} ({major})" for major, home in found) or "none"
    newest = f" to {kind.max_java}" if kind.max_java else " or newer"
    raise RuntimeError(
        f"{kind.engine} needs a JDK {kind.min_java}{newest}; set {variable} (JDKs seen: {seen})"
    )


def _fits(kind: NodeKind, major: int | None) -> bool:
    if major is None or major < kind.min_java:
        return False
    return kind.max_java is None or major <= kind.max_java


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


def build_launcher(kind: NodeKind, java_home: Path) -> str:
    """Compile the line's launcher if needed; return its class path (classes and ~/.m2 jars)."""
    target = kind.target
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not _launcher_is_built(kind):
            _run_maven(kind, java_home)
        jars = (target / "classpath.txt").read_text().strip()
    return os.pathsep.join([str(target / "classes"), jars])


def _launcher_is_built(kind: NodeKind) -> bool:
    stamp = kind.target / "launcher.stamp"
    classpath = kind.target / "classpath.txt"
    if not stamp.exists() or not classpath.exists():
        return False
    built = stamp.stat().st_mtime
    inputs = [kind.project / "pom.xml", *(kind.project / "src").rglob("*")]
    if any(path.stat().st_mtime > built for path in inputs):
        return False
    return all(Path(jar).exists() for jar in classpath.read_text().strip().split(os.pathsep))


def _run_maven(kind: NodeKind, java_home: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"Maven (mvn) is needed to build the {kind.engine} launcher")
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
        str(kind.project / "pom.xml"),
        f"-D{kind.line_property}={kind.name}",
        "compile",
        "dependency:build-classpath",
        f"-Dmdep.outputFile={kind.target / 'classpath.txt'}",
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
            f"building the {kind.engine} launcher took over {BUILD_TIMEOUT}s"
        ) from error
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL:])
        raise RuntimeError(f"building the {kind.engine} launcher failed:\n{output}")
    (kind.target / "launcher.stamp").touch()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
