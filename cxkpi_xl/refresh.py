"""One-button refresh: read the input Tables of a workbook, compute every KPI, and write
the Report and Data Issues sheets into it, leaving every other part of the file as it
was (see :mod:`cxkpi_xl.package`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .data.reader import SourceError, check_package, read
from .engine import Report, compute
from .report.layout import (
    OWNED_HEADERS,
    issues_sheet,
    outcome,
    report_sheet,
)
from .report.package import PackageError, check_sheets, check_writable, write_sheets

STAGES = ("reading", "computing", "writing")


class RefreshError(Exception):
    """Nothing was changed; the message is one line for the user."""


@dataclass
class Refreshed:
    report: Report
    target: Path
    seconds: float

    def summary(self) -> str:
        return f"Refreshed {self.target.name}: {outcome(self.report)}, {self.seconds:.1f} s"


def refresh(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    overrides: dict[str, str] | None = None,
    stage: Callable[[str], None] | None = None,
) -> Refreshed:
    """Refresh the workbook at ``path`` in place, or write the refreshed copy to
    ``output`` and leave ``path`` untouched. ``stage`` is told of each stage as it
    starts (for a progress display). Raises RefreshError with a one-line reason, having
    changed nothing, for a workbook that is open in Excel, read-only, not an xlsx/xlsm
    package, a possible zip bomb, or whose Report/Data Issues sheet is the user's own."""
    t0 = time.perf_counter()
    source = Path(path)
    target = Path(output) if output is not None else source
    tell = stage or (lambda _: None)
    try:
        check_package(source)
        if target.suffix.lower() != source.suffix.lower():
            raise RefreshError(
                f"{target.name}: the copy must keep the workbook's type ({source.suffix})"
            )
        check_writable(target)
        check_sheets(source, OWNED_HEADERS)
        before = _stamp(source)
        tell("reading")
        data = read(source, overrides)
        tell("computing")
        report = compute(data)
        tell("writing")
        sheets = [report_sheet(report), issues_sheet(report.issues)]

        def unchanged() -> None:
            # Excel (or anyone) may have saved the file while we computed: keep theirs.
            if _stamp(source) != before:
                raise RefreshError(f"{source.name} changed while refreshing: nothing was written")
            check_writable(target)

        write_sheets(source, target, sheets, OWNED_HEADERS, after_write=unchanged)
    except (SourceError, PackageError, ValueError) as e:  # ValueError: a bad --set value
        raise RefreshError(str(e)) from None
    except OSError as e:
        raise RefreshError(f"{target.name}: {e.strerror or e}: nothing was changed") from None
    return Refreshed(report, target, time.perf_counter() - t0)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size
