"""The machinery that lets the reader parse a workbook's tables at the same time.

calamine parses a sheet's XML without holding Python's lock (the GIL), so two threads
parse two sheets in about half the time; a ``CalamineWorkbook`` cannot be used by two
threads at once (``RuntimeError: Already borrowed``), so each thread borrows its own from
:class:`BookPool`. While the tables are built, millions of row lists are made and dropped,
none of them in a reference cycle: the garbage collector would find nothing, yet its
passes over them cost a sixth of a read, so :func:`gc_paused` keeps it off meanwhile and
always turns it on again after. ``CXKPI_READ_THREADS`` sets the number of threads
(``1`` reads one table after another in the calling thread, as before).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

READ_THREADS = "CXKPI_READ_THREADS"
"""The environment variable that sets how many threads read a workbook's tables."""
MAX_THREADS = 2
"""Threads by default (fewer on a machine with fewer cores): more would hold more tables'
row lists in memory at once for little gain on the 2-core machines this runs on."""

T = TypeVar("T")


def read_threads() -> int:
    """The number of threads that read a workbook's tables: ``CXKPI_READ_THREADS`` when
    it is a whole number from 1 (at most 16), else ``min(2, cores)``."""
    value = os.environ.get(READ_THREADS, "").strip()
    if value.isdigit() and int(value) >= 1:
        return min(int(value), 16)
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off inside, and on again after (when it was on before the
    first of any overlapping pauses), also when the body raises."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


class BookPool:
    """Workbooks for the reading threads: one thread uses a workbook at a time; the first
    is the one already open, more are opened (and closed after) only when threads need
    them at once."""

    def __init__(self, first: Any, open_book: Callable[[], Any]):
        self._free = [first]
        self._opened: list[Any] = []
        self._open = open_book
        self._lock = threading.Lock()

    @contextmanager
    def book(self) -> Iterator[Any]:
        with self._lock:
            book = self._free.pop() if self._free else None
        if book is None:
            book = self._open()
            with self._lock:
                self._opened.append(book)
        try:
            yield book
        finally:
            with self._lock:
                self._free.append(book)

    def close(self) -> None:
        """Close the workbooks this pool opened (not the first, which its owner keeps)."""
        for book in self._opened:
            try:
                book.close()
            except Exception:  # already closed: nothing to free
                pass
        self._opened.clear()


def run_all(jobs: Sequence[Callable[[], T]], threads: int, sizes: Sequence[int]) -> list[T]:
    """Each job's result, in the jobs' order. With more than one thread the jobs run in a
    pool, the largest (by ``sizes``) first so that no large job starts last; the first
    job (in order) that raised raises here, as it would have one after another, and the
    jobs not yet started are dropped."""
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -sizes[i])
    futures: dict[int, Future[T]] = {}
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        for i in order:
            futures[i] = pool.submit(jobs[i])
        try:
            return [futures[i].result() for i in range(len(jobs))]
        except BaseException:
            for f in futures.values():
                f.cancel()
            raise
