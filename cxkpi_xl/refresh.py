"""One-button refresh: read the input Tables of a workbook, compute every KPI, and write
the Report and Data Issues sheets into it, leaving every other part of the file as it
was (see :mod:`cxkpi_xl.package`)."""

from __future__ import annotations

import importlib
import os
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the rest is imported when a refresh runs: see nothing_changed
    from .engine import Report

_LAZY = {
    "SourceError": "data.reader",
    "check_package": "data.reader",
    "read": "data.reader",
    "compute": "engine",
}
"""Names of this module imported when first used (pandas with them), so that the check
that nothing changed imports neither pandas nor numpy."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__package__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def _lazy(name: str) -> Any:
    """A lazy name as the module holds it now (a test may have patched it)."""
    return globals()[name] if name in globals() else __getattr__(name)


STAGES = ("reading", "computing", "writing")


class RefreshError(Exception):
    """Nothing was changed; the message is one line for the user."""


@dataclass
class Refreshed:
    report: Report
    target: Path
    seconds: float
    empty_tables: list[str] = field(default_factory=list)

    def summary(self) -> str:
        from .report.layout import outcome

        said = outcome(self.report, self.empty_tables)
        return f"Refreshed {self.target.name}: {said}, {self.seconds:.1f} s"


def refresh(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    overrides: dict[str, str] | None = None,
    stage: Callable[[str], None] | None = None,
    force: bool = False,
    cache: bool = True,
    source: Any = None,
) -> Refreshed:
    """Refresh the workbook at ``path`` in place, or write the refreshed copy to
    ``output`` and leave ``path`` untouched. ``stage`` is told of each stage as it
    starts (for a progress display). ``force`` refreshes a digitally signed workbook,
    removing its signature (it would no longer match). With ``cache`` (the default) the
    input tables whose parts did not change since the last read are reloaded from the
    read cache (:mod:`cxkpi_xl.data.cache`) and the written workbook is stamped there, so
    that :func:`nothing_changed` can tell next time; ``cache=False`` neither reads nor
    writes the cache.
    ``source`` (a Parquet folder, a DuckDB file, a connection URL) is read instead of the
    workbook's own Tables; without it, a ``source`` named in the workbook's Settings is.
    A refresh from such a source is never stamped: its data can change without the
    workbook changing.

    Any failure, whatever raised it (a workbook open in Excel or LibreOffice, read-only,
    not an xlsx/xlsm package, damaged, a possible zip bomb, signed, structure-protected,
    a Report/Data Issues sheet that is the user's own, changed while we computed, out of
    memory), raises RefreshError with a one-line reason, having changed nothing."""
    from .data import prefetch
    from .data.cache import book_dir

    # The changed table parsed while the rest is imported (data.prefetch).
    ahead = prefetch.start(Path(path), book_dir) if cache and source is None else None
    try:
        return _refresh(
            path,
            output=output,
            overrides=overrides,
            stage=stage,
            force=force,
            cache=cache,
            source=source,
        )
    finally:
        prefetch.discard(ahead)


def _refresh(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None,
    overrides: dict[str, str] | None,
    stage: Callable[[str], None] | None,
    force: bool,
    cache: bool,
    source: Any,
) -> Refreshed:
    from .data.cache import Cache, forget_stamp, stamp
    from .data.choose import read_for_book
    from .report.board import report_sheet
    from .report.layout import OWNED_HEADERS, issues_sheet
    from .report.package import check_sheets, check_writable, write_sheets

    check_package, read, compute = (_lazy(n) for n in ("check_package", "read", "compute"))
    t0 = time.perf_counter()
    data_source, source = source, Path(path)
    target = Path(output) if output is not None else source
    tell = stage or (lambda _: None)
    reader: Any = None
    try:
        check_package(source)
        if target.suffix.lower() != source.suffix.lower():
            raise RefreshError(
                f"{target.name}: the copy must keep the workbook's type ({source.suffix})"
            )
        check_writable(target)
        before = fingerprint(source)
        check_sheets(source, OWNED_HEADERS, force=force)  # every edit, planned before computing
        tell("reading")
        reader = Cache(background=True) if cache and data_source is None else None
        data = read_for_book(source, data_source, overrides, cache=reader, read=read)
        external = data_source is not None or data.source != str(source)
        tell("computing")
        memo = _memo(source) if reader is not None and not external else None
        report = compute(data) if memo is None else compute(data, memo=memo)
        tell("writing")
        empty = empty_tables(data.tables)
        if data.usage_summary is not None and not data.usage_summary.empty:
            empty = [t for t in empty if t != "Usage"]  # summarised: by a source, or kept so
        sheets = [report_sheet(report, empty), issues_sheet(report.issues)]

        def unchanged() -> None:
            # Excel (or anyone) may have saved the file while we computed: keep theirs.
            if fingerprint(source) != before:
                raise RefreshError(f"{source.name} changed while refreshing: nothing was written")
            check_writable(target)

        unchanged()  # before reading the package again to write it, and after writing
        if reader is not None or external:
            forget_stamp(target)  # until the new one is written (none for another source)
        write_sheets(source, target, sheets, OWNED_HEADERS, after_write=unchanged, force=force)
        if reader is not None and reader.read_parts and not external:  # kept in the copy
            stamp(target, overrides, reader.read_parts)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:
        raise RefreshError(failure_reason(e, source, target)) from None
    finally:
        if reader is not None:
            reader.finish()  # the changed tables, kept while we computed and wrote
    return Refreshed(report, target, time.perf_counter() - t0, empty)


def _memo(book: Path) -> Any:
    """The compute memo of a workbook (:mod:`cxkpi_xl.engine.memo`), beside its read
    cache and private to the user like it; None where that folder cannot be made."""
    from .data.cache import book_dir, make_private_dir
    from .engine.memo import Memo

    folder = book_dir(book)
    try:
        make_private_dir(folder)
    except OSError:
        return None
    return Memo(folder / "memo")


def nothing_changed(path: str | os.PathLike[str], overrides: dict[str, str] | None) -> bool:
    """Whether the workbook is exactly as the last refresh (with the read cache) wrote it,
    with the same ``--set`` overrides and version: a refresh would write the same Report.
    Reads only the zip directory; imports neither pandas nor numpy."""
    from .data.cache import nothing_changed as unchanged

    return unchanged(Path(path), overrides)


def empty_tables(tables: dict[str, Any]) -> list[str]:
    """The input tables without a row (absent ones included), in the schema's order."""
    from .data.schema import TABLES

    return [t.name for t in TABLES if len(tables.get(t.name, ())) == 0]


NOTHING_CHANGED = "nothing was changed"


def failure_reason(e: BaseException, source: Path, target: Path | None = None) -> str:
    """One line for the user from any exception of a refresh: what is wrong, and that
    nothing was changed."""
    from .report.package import PackageError

    SourceError = _lazy("SourceError")

    if isinstance(e, RefreshError | SourceError | PackageError | ValueError):
        text = _one_line(str(e))  # our own reasons (ValueError: a bad --set value)
    elif isinstance(e, MemoryError):
        text = f"{source.name} is too large to refresh in the memory available"
    elif isinstance(e, zipfile.BadZipFile | zlib.error | EOFError):
        text = f"{source.name} is a damaged zip package ({_one_line(str(e)) or type(e).__name__})"
    elif isinstance(e, FileNotFoundError) and e.filename is not None:
        text = f"{Path(e.filename).name}: no such file (was it moved while refreshing?)"
    elif isinstance(e, OSError):
        name = Path(e.filename).name if e.filename else (target or source).name
        text = f"{name}: {e.strerror or _one_line(str(e)) or type(e).__name__}"
    else:  # a reader library's own error (calamine, a panic in its Rust code, ...)
        detail = _one_line(str(e)) or type(e).__name__
        text = f"{source.name} cannot be read ({detail})"
    if "nothing was" not in text:  # "...file!: nothing was changed" reads badly
        text = f"{text.rstrip(' .!?:;')}: {NOTHING_CHANGED}"
    return text


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def fingerprint(path: Path) -> tuple[int, int]:
    """The size and CRC-32 of a file's whole content: whether it is still the file we
    read (a save by Excel or anyone rewrites it; a CRC-32 misses a change once in four
    billion, and reads 79 MiB in a hundredth of a second where SHA-256 takes five hundredths)."""
    crc = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return path.stat().st_size, crc
