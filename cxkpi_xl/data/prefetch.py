"""Parse the input Table a refresh will re-read before the rest of the refresh is loaded.

After a user edits one table, a refresh spends most of its time in two things: importing
pandas, numpy, the engine and the report (which holds Python's lock, the GIL) and then
calamine's parse of the changed table (which does not). :func:`start` runs first thing
in a refresh, imports nothing heavier than python-calamine, and from the zip directory
and the read cache's manifests (:mod:`~cxkpi_xl.data.cache`) finds the largest input
Table whose parts changed since the cache kept it. It parses that Table in a thread
while the main thread imports the rest, so the two overlap instead of adding up.

The reader asks :func:`take` for a table, with the package's state (every part's CRC-32
and size, from the zip directory) as the reader sees it. The prefetched parse is handed
over only for that table and that state, and only if the package was in that same state
before and after the parse: the rows are those the reader would have parsed itself, from
the same bytes. Nothing is parsed of a package the reader would refuse
(:func:`.zipparts.package_problem`: a possible zip bomb, a part too large) or of a sheet
whose grid may be oversized or has no ``<dimension>`` (judged on the sheet that holds
the Table now); anything else (another table, the file saved again meanwhile, any
error, even a panic in calamine) and the reader parses as it always does. Nothing here
raises or blocks for good, and nothing is kept past :func:`discard`.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .zipparts import (
    State,
    _dimension_cells,
    _oversized,
    _package_sheets,
    package_problem,
    state_of,
)


class _Prefetch:
    """One workbook's prefetch: which table (known at once) and its parse (later)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.chosen: Future[tuple[State, str] | None] = Future()
        self.parsed: Future[Any] = Future()
        self.failure: str | None = None
        """Why nothing was parsed when something went wrong (for the tests and a debugger)."""
        self.dropped = False
        """Let go before its parse began (discarded, or its table is read another way):
        then it does not parse. A prefetch taken by the reader is not dropped."""


_lock = threading.Lock()
_books: dict[str, _Prefetch] = {}


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def start(path: Path, folder_of: Callable[[Path], Path]) -> _Prefetch | None:
    """Start parsing, in a thread, the largest input Table of the workbook at ``path``
    whose parts changed since the read cache kept it (in ``folder_of(path)``, the
    workbook's cache folder: ``cache.book_dir``); the handle to :func:`discard`. No cache,
    nothing changed, or anything odd: nothing is parsed."""
    try:
        folder = folder_of(Path(path))
        job = _Prefetch(_key(path))
        with _lock:
            _books[job.key] = job
        threading.Thread(
            target=_run, args=(Path(path), folder, job), name="cxkpi-prefetch", daemon=True
        ).start()
        return job
    except Exception:  # a prefetch is only ever a head start
        return None


def _changed_table(path: Path, folder: Path) -> tuple[State, str, str] | None:
    """The package's state, and the largest kept Table (its name, the part of the sheet
    that holds it now) whose parts are not as the cache kept them; None if there is none,
    or if the package is one the reader refuses."""
    if package_problem(path) is not None:
        return None
    with zipfile.ZipFile(path) as z:
        state = state_of(z)
        changed: list[str] = []
        for manifest in folder.glob("*.json"):
            try:
                key = json.loads(manifest.read_bytes())["key"]
                if key["kind"] != "table":
                    continue
                deps = key["deps"]
                if not all(state.get(p) == v for p, v in deps.items()):
                    changed.append(manifest.stem.lower())
            except Exception:  # not a manifest, or damaged: the cache decides about it
                continue
        if not changed:
            return None
        home = {t: p.name for p in _package_sheets(z).values() for t in p.tables}
        found = [(t, home[t]) for t in changed if home.get(t) in state]
        if not found:
            return None
        table, part = max(found, key=lambda f: state[f[1]][1])
        cells = _dimension_cells(z, part)
        if cells is None or _oversized(z, part, cells):
            return None  # the reader scans it first, or reads it another way
    return state, table, part


def _run(path: Path, folder: Path, job: _Prefetch) -> None:
    parsed: Any = None
    try:
        found = _changed_table(path, folder)
        job.chosen.set_result(None if found is None else (found[0], found[1]))
        with _lock:
            wanted = not job.dropped  # not let go meanwhile (taken is still wanted)
        if found is not None and wanted:
            from python_calamine import CalamineWorkbook

            state, table, _ = found
            book = CalamineWorkbook.from_path(str(path), load_tables=True)
            try:
                names = {n.lower(): n for n in book.table_names or []}
                parsed = book.get_table_by_name(names[table])
            finally:
                book.close()
            with zipfile.ZipFile(path) as z:
                if state_of(z) != state:  # saved while we parsed: not the bytes we saw
                    parsed = None
                    job.failure = "the package changed while it was parsed"
    except BaseException as e:  # calamine's panics too: the reader parses it itself
        parsed = None
        job.failure = f"{type(e).__name__}: {e}"
    finally:  # both always answered: a reader waiting in take never waits for good
        if not job.chosen.done():
            job.chosen.set_result(None)
        job.parsed.set_result(parsed)


def take(path: Path, table: str, state: State) -> Any:
    """calamine's parse of ``table`` (an Excel Table of the workbook at ``path``) if it was
    prefetched from the package in ``state``; else None. Handed over once."""
    with _lock:
        job = _books.get(_key(path))
    if job is None:
        return None
    try:
        chosen = job.chosen.result()
        if chosen is None or chosen[1] != table.lower():
            return None
        with _lock:
            if _books.get(job.key) is not job:
                return None  # taken, or discarded, meanwhile
            del _books[job.key]
            if chosen[0] != state:  # the reader parses this table itself
                job.dropped = True
                return None
        return job.parsed.result()
    except Exception:
        return None


def discard(job: _Prefetch | None) -> None:
    """Forget a prefetch, taken or not (its parse, if still running, is dropped when it
    ends); another prefetch of the same workbook since is left alone."""
    if job is None:
        return
    with _lock:
        if _books.get(job.key) is job:
            del _books[job.key]
            job.dropped = True
