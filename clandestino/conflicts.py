"""The original tool's backend distributions, installed beside this one, found before a run.

`clandestino-postgres`, `clandestino-sqlite` and the others on PyPI install top-level packages
with the same names as ours: installed after this distribution they overwrite its files, and
`pip uninstall`ing them afterwards deletes files of ours. Either way the code that would run is
not this distribution's, so a run stops with the pip commands that repair the environment.

The look is a listing of each `sys.path` folder for their `.dist-info`, a few milliseconds;
`importlib.metadata` is read only when one is there.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from clandestino.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["OriginalBackendInstalled", "refuse_original_backends"]

OUR_PACKAGES = {"clandestino_postgres", "clandestino_mongo", "clandestino_elasticsearch"}
OUR_PACKAGES |= {"clandestino_opensearch"}
OUR_PACKAGES |= {"clandestino_sqlite", "clandestino"}
_ORIGINAL = re.compile(
    r"clandestino[_.-](postgres|mongo|elasticsearch|sqlite|minio|qdrant)-[^-]+\.dist-info",
    re.IGNORECASE,
)
_EXTRAS = {"postgres", "mongo", "elasticsearch"}


class OriginalBackendInstalled(ConfigurationError):
    """Distributions of the original tool claim this distribution's packages."""


def refuse_original_backends(path: list[str] | None = None) -> None:
    """Raise OriginalBackendInstalled when an original backend distribution shares our packages."""
    found = _original_distributions(sys.path if path is None else path)
    if not found:
        return
    names = sorted({name for name, _ in found})
    backends = sorted({name.removeprefix("clandestino-") for name in names} & _EXTRAS)
    python = sys.executable or "python"
    uninstall = f"{python} -m pip uninstall -y {' '.join(names)}"
    install = f"{python} -m pip install --force-reinstall {_our_requirement(backends)}"
    raise OriginalBackendInstalled(
        f"the original tool's {', '.join(names)} "
        f"{'is' if len(names) == 1 else 'are'} installed beside this clandestino and "
        f"{'replaces' if len(names) == 1 else 'replace'} its "
        f"{', '.join(sorted({p for _, packages in found for p in packages}))}",
        f"repair the environment with: {uninstall} && {install}",
    )


def _original_distributions(path: list[str]) -> list[tuple[str, set[str]]]:
    found: list[tuple[str, set[str]]] = []
    for folder in dict.fromkeys(path):
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in entries:
            if _ORIGINAL.fullmatch(entry):
                from pathlib import Path

                claimed = _claimed_packages(Path(folder or ".", entry))
                if claimed:
                    name = re.split(r"-\d", entry, maxsplit=1)[0]
                    found.append((name.replace("_", "-").replace(".", "-").lower(), claimed))
    return found


def _claimed_packages(dist_info: Path) -> set[str]:
    from importlib.metadata import Distribution

    files = Distribution.at(dist_info).files or []
    return {file.parts[0] for file in files if file.parts and file.parts[0] in OUR_PACKAGES}


def _our_requirement(extras: list[str]) -> str:
    """`'clandestino[...]'`, or the editable source folder when this one is installed so."""
    import json
    from importlib.metadata import PackageNotFoundError, distribution

    suffix = f"[{','.join(extras)}]" if extras else ""
    try:
        direct = json.loads(distribution("clandestino").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        direct = {}
    url = direct.get("url", "")
    if direct.get("dir_info", {}).get("editable") and url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return f"-e '{unquote(urlsplit(url).path)}{suffix}'"
    return f"'clandestino{suffix}'"
