"""Which source a refresh of a workbook reads: the one given (``--source``), else the
one the workbook's Settings name (its ``source`` setting), else the workbook itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .reader import Dataset, SourceError, read, read_settings
from .sources import duckdb_url_path, has_password, is_url, spark_folder


def source_of_book(values: Mapping[str, Any], folder: Path | None = None) -> str | None:
    """The ``source`` setting of a workbook, or None; a relative path is taken from the
    workbook's folder. A URL with a password in it is refused (credentials come from
    environment variables, ``${NAME}`` in the URL, or the backend's own configuration)."""
    named = values.get("source")
    if named is None or not str(named).strip():
        return None
    text = str(named).strip()
    if text.lower().startswith("duckdb://") and "${" not in text:
        text = duckdb_url_path(text)  # a file, taken from the workbook's folder below
    spark = re.match(r"^((?:py)?spark://local(?:\[[0-9*]+\])?)(/.+)$", text, re.IGNORECASE)
    if spark and folder is not None:  # a relative folder is the workbook's folder's
        found = spark_folder(spark.group(2), folder)
        if found is not None:
            return f"{spark.group(1)}{found.resolve()}"
    if is_url(text):
        if has_password(text):
            raise SourceError(
                "the source setting holds a password: never keep one in the workbook; "
                "name an environment variable instead (${PGPASSWORD} in the URL, or "
                "PGPASSWORD for PostgreSQL)"
            )
        return text
    path = Path(text).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    return str(path)


def read_for_book(
    book: Path,
    source: Any = None,
    overrides: Mapping[str, Any] | None = None,
    cache: Any = None,
    *,
    read: Callable[..., Dataset] = read,
) -> Dataset:
    """What a refresh of ``book`` reads: ``source`` when given; else, when the
    workbook's Settings name a ``source``, that source with the workbook's settings
    (``--set`` overrides still winning), the workbook's own tables left unread (it may
    hold none); else the workbook (through the read ``cache`` when given). ``read`` is the
    reader's (the refresh hands over its own, which its tests may replace)."""
    if source is not None:
        return read(source, overrides)
    named = None
    if book.suffix.lower() in (".xlsx", ".xlsm") and book.is_file():
        own = read_settings(book)
        named = source_of_book(own.values, book.parent)
    if named is None:
        return read(book, overrides, cache=cache)
    from .periods import index_to_date
    from .schema import SETTINGS_BY_NAME

    settings: dict[str, Any] = {}
    for name, value in own.values.items():
        if value is None or name == "source":
            continue
        if SETTINGS_BY_NAME[name].kind == "month":
            value = index_to_date(int(value)).isoformat()[:7]
        settings[name] = value
    return read(named, settings | dict(overrides or {}))
