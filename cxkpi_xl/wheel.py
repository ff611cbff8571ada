"""A pure-Python wheel of the installed cxkpi-xl, for ``cxkpi lite`` and ``cxkpi server``.

xlwings Lite installs packages with micropip from a URL, and an xlwings Server project
from its requirements, so the setup commands put a wheel beside the files they write. It
is made from the package as installed (a source checkout in editable mode or a wheel
install alike), without a build backend or a network: the modules of every package of
``PACKAGES``, the installed metadata (``METADATA``, ``entry_points.txt``), a ``WHEEL``
file and a ``RECORD`` with each file's sha256 (PEP 427). The archive's dates are fixed,
so the same installation gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import zipfile
from pathlib import Path

DIST = "cxkpi-xl"
PACKAGES = (
    "cxkpi_xl",
    "cxkpi_xl.data",
    "cxkpi_xl.engine",
    "cxkpi_xl.excel",
    "cxkpi_xl.kpis",
    "cxkpi_xl.models",
    "cxkpi_xl.report",
    "cxkpi_xl.udfs",
    "cxkpi_xl.workbook",
)
"""The packages of the distribution (``[tool.setuptools] packages``; a test holds the
two lists equal)."""
DATA_FILES = ("py.typed",)
EPOCH = (1980, 1, 1, 0, 0, 0)


def wheel_name(version: str | None = None) -> str:
    """``cxkpi_xl-<version>-py3-none-any.whl``."""
    version = version or _metadata()[0].version
    return f"cxkpi_xl-{version}-py3-none-any.whl"


def _files() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in PACKAGES:
        module = importlib.import_module(name)
        folder = Path(next(iter(module.__path__)))
        for path in sorted(folder.iterdir()):
            if path.is_file() and (path.suffix == ".py" or path.name in DATA_FILES):
                out[name.replace(".", "/") + "/" + path.name] = path.read_bytes()
    return out


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _metadata() -> tuple[importlib.metadata.Distribution, str]:
    """The installed distribution and its core metadata: an installed ``.dist-info``'s
    METADATA first, else the PKG-INFO of an ``.egg-info`` (a source checkout on the path)."""
    found = list(importlib.metadata.distributions(name=DIST))
    for dist in found:
        text = dist.read_text("METADATA")
        if text:
            return dist, text
    for dist in found:
        text = dist.read_text("PKG-INFO")
        if text:
            return dist, text
    raise RuntimeError(f"{DIST} is not installed: pip install it first")


def write_wheel(directory: str | Path) -> Path:
    """Write the wheel of the installed cxkpi-xl into ``directory``; returns its path."""
    dist, metadata = _metadata()
    version = dist.version
    info = f"cxkpi_xl-{version}.dist-info"
    files = _files()
    files[f"{info}/METADATA"] = metadata.encode("utf-8")
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: cxkpi-xl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode("utf-8")
    record = "".join(f"{n},{_digest(d)},{len(d)}\n" for n, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = Path(directory) / wheel_name(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            z.writestr(entry, data)
    return path


__all__ = ["PACKAGES", "wheel_name", "write_wheel"]
