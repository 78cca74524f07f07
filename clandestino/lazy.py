"""A package's public names loaded on first use (PEP 562), so importing the package costs nothing.

The backends' packages keep the original's names (`from clandestino_postgres import
PostgresInfra`), while `cdt -m` imports them for the no-op check, which needs none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module

__all__ = ["lazy_names"]


def lazy_names(package: str, modules: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` giving each name in `modules` from the submodule it maps to; a name
    that is the submodule itself (`ref`) gives the submodule."""

    def getattr_(name: str) -> object:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_module(modules[name])
        return module if modules[name].rpartition(".")[2] == name else getattr(module, name)

    return getattr_
