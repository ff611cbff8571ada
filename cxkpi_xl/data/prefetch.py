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
the same bytes. Anything else (another table, the file saved again meanwhile, a sheet
whose grid may be oversized, any error) and the reader parses as it always does. Nothing
here raises, and nothing is kept past :func:`discard`.
"""

from __future__ import annotations

import json
import threading
import zipfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .zipparts import _dimension_cells, _oversized

State = dict[str, list[int]]
"""Each part of a package: [CRC-32, size]."""


class _Prefetch:
    """One workbook's prefetch: which table (known at once) and its parse (later)."""

    def __init__(self) -> None:
        self.chosen: Future[tuple[State, str] | None] = Future()
        self.parsed: Future[Any] = Future()


_lock = threading.Lock()
_books: dict[str, _Prefetch] = {}


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def state_of(z: zipfile.ZipFile) -> State:
    """Each part's [CRC-32, size] from an open package's directory."""
    return {i.filename: [i.CRC, i.file_size] for i in z.infolist()}


def start(path: Path, folder: Path) -> None:
    """Start parsing, in a thread, the largest input Table of the workbook at ``path``
    whose parts changed since the read cache in ``folder`` (the workbook's cache folder)
    kept it. No cache, nothing changed, or anything odd: nothing is parsed."""
    try:
        key = _key(path)
        job = _Prefetch()
        with _lock:
            _books[key] = job
        threading.Thread(
            target=_run, args=(Path(path), folder, job), name="cxkpi-prefetch", daemon=True
        ).start()
    except Exception:  # a prefetch is only ever a head start
        discard(path)


def _changed_table(path: Path, folder: Path) -> tuple[State, str, str] | None:
    """The package's state, and the largest kept Table (its name, its sheet's part) whose
    parts are not as the cache kept them; None if there is none."""
    with zipfile.ZipFile(path) as z:
        state = state_of(z)
    best: tuple[int, str, str] | None = None
    for manifest in folder.glob("*.json"):
        try:
            key = json.loads(manifest.read_bytes())["key"]
            if key["kind"] != "table":
                continue
            deps, part = key["deps"], key["part"]
        except Exception:  # not a manifest, or damaged: the cache decides about it
            continue
        if part not in state or all(state.get(p) == v for p, v in deps.items()):
            continue
        size = state[part][1]
        if best is None or size > best[0]:
            best = (size, manifest.stem, part)
    return None if best is None else (state, best[1], best[2])


def _run(path: Path, folder: Path, job: _Prefetch) -> None:
    try:
        found = _changed_table(path, folder)
        if found is not None:
            state, table, part = found
            with zipfile.ZipFile(path) as z:
                cells = _dimension_cells(z, part)
                if cells is None or _oversized(z, part, cells):
                    found = None  # the reader scans it first, or reads it another way
    except Exception:
        found = None
    if found is None:
        job.chosen.set_result(None)
        job.parsed.set_result(None)
        return
    job.chosen.set_result((state, table.lower()))
    try:
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path), load_tables=True)
        try:
            names = {n.lower(): n for n in book.table_names or []}
            parsed = book.get_table_by_name(names[table.lower()])
        finally:
            book.close()
        with zipfile.ZipFile(path) as z:
            if state_of(z) != state:  # saved while we parsed: not the bytes we saw
                parsed = None
    except Exception:
        parsed = None
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
        if chosen[0] != state:  # the reader parses this table itself: let this one go
            discard(path)
            return None
        with _lock:
            if _books.get(_key(path)) is not job:
                return None  # taken, or discarded, meanwhile
            del _books[_key(path)]
        return job.parsed.result()
    except Exception:
        return None


def discard(path: Path) -> None:
    """Forget the workbook's prefetch, taken or not (its parse, if still running, is
    dropped when it ends)."""
    try:
        with _lock:
            _books.pop(_key(path), None)
    except Exception:
        pass
