"""Loaded before any test module: xlwings picks its runtime when it is first imported,
so the Office.js runtime of xlwings Lite and Server is switched on here, before anything
imports xlwings. The noncommercial key is accepted for this (PolyForm Noncommercial)."""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")


@pytest.fixture(autouse=True, scope="session")
def _read_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every refresh of the test run (and of the commands it starts) keeps its read cache
    in a temporary folder, never in the user's cache directory."""
    before = os.environ.get("CXKPI_CACHE_DIR")
    os.environ["CXKPI_CACHE_DIR"] = str(tmp_path_factory.mktemp("cxkpi-cache"))
    yield
    if before is None:
        os.environ.pop("CXKPI_CACHE_DIR", None)
    else:
        os.environ["CXKPI_CACHE_DIR"] = before
