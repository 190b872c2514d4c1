"""Lazy public surfaces for service packages (PEP 562), so importing a package's light modules
(its `cli`, its `client`) does not load torch, CHGNet or Ray."""

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `package + exports[name]` on first access of `name`.

    Usage in `<pkg>/__init__.py`: `__getattr__ = lazy_exports(__name__, {"create_server":
    "._server"})`, with the same names in `__all__`.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    return __getattr__
