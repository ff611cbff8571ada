"""The module names from before the rooms (issue 13), kept importable.

``import cxkpi_xl.reader`` gives :mod:`cxkpi_xl.data.reader` itself, the same module
object (so a name patched on one is patched on the other), imported only when asked for:
``import cxkpi_xl`` stays as light as before. New code imports the rooms' paths; these
names are for users' scripts, notebooks and workbooks written before the move.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

MOVED = {
    **{m: f"kpis.{m}" for m in ("advocacy", "engagement", "retention", "revenue", "support")},
    **{m: f"kpis.{m}" for m in ("surveys", "value")},
    **{m: f"data.{m}" for m in ("cells", "periods", "reader", "sample", "schema")},
    **{m: f"report.{m}" for m in ("layout", "package")},
    "tables": "engine.tables",
}
"""Old module name (under ``cxkpi_xl``) -> its path in the rooms."""

PACKAGE = __name__.rpartition(".")[0]


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``cxkpi_xl.<old name>`` and loads it as the module at its new path."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        if parent != PACKAGE or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        real = importlib.import_module(f"{PACKAGE}.{MOVED[spec.name.rpartition('.')[2]]}")
        self._specs[real.__name__] = real.__spec__
        return real

    def exec_module(self, module: ModuleType) -> None:
        # The import machinery has set the alias's spec on the module: put its own back.
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())


def module(name: str) -> ModuleType:
    """The module an old name stands for (for the package's ``__getattr__``)."""
    return importlib.import_module(f"{PACKAGE}.{name}")
