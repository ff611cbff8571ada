"""Reusing the engine's expensive parts across computes whose inputs did not change.

A :class:`Part` declares the tables and columns it reads. Its key is a digest of those
columns (a table's text columns by its ``Dataset.digests`` entry, when it has one), the
table's absent optional columns, every setting, the report's axis, the
product's version and a digest of the package's own source code. :class:`Memo` keeps, in
a directory, one file per part: the part's result and the data issues it added, in order.
A missing, corrupt, truncated or other-version file is a miss, never an error; a file
that cannot be written is skipped.

The files are pickles. That is safe here because the directory is the user's own cache
directory and every file in it was written by this same code for this same user (a
reader who can write there can already run code as that user); and a file is unpickled
only after its length, magic, version and BLAKE2 checksum of the payload match, so a
truncated or damaged file is never unpickled.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..data.issues import Issue
from ..data.reader import Dataset
from ..data.schema import CUSTOMER_ID_COLUMNS
from .axis import _Axis

MEMO_VERSION = 1
"""The layout of a memo file; a file of another version is a miss."""

_MAGIC = b"CXKPIMEMO\n"
_SUFFIX = ".memo"
_DIGEST = 32

T = TypeVar("T")


def encoded_columns() -> list[tuple[str, str]]:
    """Every (table, column) holding a customer id, which ``compute`` turns into float
    codes numbered across all of them (so a table's codes depend on the other tables)."""
    return list(CUSTOMER_ID_COLUMNS)


@dataclass(frozen=True)
class Part:
    """An expensive part of ``compute``: its name and the columns it reads, per table
    (the settings and the axis are always in the key). The declarations are checked by
    tests/test_memo.py: changing what is not declared does not change the part's result."""

    name: str
    columns: Mapping[str, tuple[str, ...]]


_BASE_COLUMNS: dict[str, tuple[str, ...]] = {
    "Customers": ("customer_id", "signup_date", "churn_date"),
    "MRR": ("customer_id", "month", "mrr"),
}
"""What ``subscriptions._Base`` reads."""

PREDICTIVE = Part(
    "predictive",
    {
        **_BASE_COLUMNS,
        "Customers": (*_BASE_COLUMNS["Customers"], "segment"),
        "Orders": ("customer_id", "order_date", "amount"),
    },
)
"""``predictive._predictive``: BG/NBD and Gamma-Gamma on the Orders, sBG on the MRR."""

IMPACT = Part(
    "cx_impact",
    {
        **_BASE_COLUMNS,
        "Customers": (*_BASE_COLUMNS["Customers"], "segment"),
        "Surveys": ("customer_id", "response_date", "survey", "score"),
    },
)
"""``impact.cx_impact``: "Does CX pay?" on the base and the NPS answers."""

USAGE = Part(
    "usage",
    {**_BASE_COLUMNS, "Usage": ("activity_date", "user_id", "customer_id", "feature")},
)
"""``activity._usage_kpis`` of the report (not of the breakdowns): stickiness, product usage
rate and feature adoption, on the Usage table (the biggest) and the base; no Surveys, so
it is reused after a change to the answers. Its result is its exact effect: the two KPI
arrays it writes and the adoption frame it returns."""

HEALTH = Part(
    "health",
    {
        "Health": ("customer_id", "month", "measure", "score"),
        "HealthWeights": ("measure", "weight"),
    },
)
"""``customers._health_kpis``: at-risk rate and health score (the base is not read). Its
result is its exact effect: the two KPI arrays it writes and the issues it adds."""

PARTS = (PREDICTIVE, IMPACT, USAGE, HEALTH)


# --- the key -------------------------------------------------------------------------

_code_digest: bytes | None = None


def code_version() -> bytes:
    """A digest of the product's version, the Python, numpy and pandas versions and the
    source of every module of the package (a change to any code may change a result)."""
    global _code_digest
    if _code_digest is None:
        h = hashlib.blake2b(digest_size=_DIGEST)
        for part in (_product_version(), platform.python_version(), np.__version__):
            h.update(part.encode() + b"\0")
        h.update(pd.__version__.encode() + b"\0")
        package = Path(__file__).resolve().parent.parent
        try:
            for path in sorted(package.rglob("*.py")):
                h.update(str(path.relative_to(package)).encode() + b"\0")
                h.update(path.read_bytes())
        except OSError:  # no readable sources (a zipped install): the versions alone
            h.update(b"no sources")
        _code_digest = h.digest()
    return _code_digest


def _product_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("cxkpi-xl")
    except Exception:  # not installed as a distribution: the source digest still holds
        return "unknown"


def _update_series(h: Any, s: pd.Series) -> None:
    arr = s.to_numpy()
    h.update(f"{s.name}|{arr.dtype.str}|{len(arr)}\0".encode())
    if arr.dtype.kind in "biufcmM":
        h.update(np.ascontiguousarray(arr).view(np.uint8).data)
        return
    kind = pd.api.types.infer_dtype(s, skipna=True)
    h.update(kind.encode() + b"\0")
    if kind in ("string", "empty"):
        # strings and blanks only: a 64-bit hash of each value, and where the blanks are
        h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().data)
        h.update(np.packbits(s.isna().to_numpy()).data)
    else:  # mixed values: their exact pickles (rare, slower)
        h.update(pickle.dumps(arr.tolist(), protocol=5))


def _update_index(h: Any, index: pd.Index) -> None:
    if isinstance(index, pd.RangeIndex):
        h.update(f"range {index.start} {index.stop} {index.step}\0".encode())
    else:
        _update_series(h, index.to_series(index=pd.RangeIndex(len(index))))


def _column_digest(frame: pd.DataFrame, column: str, seen: dict[Any, bytes] | None) -> bytes:
    """The digest of one column, made once per compute: ``seen`` (kept by the memo for the
    Dataset of one compute) holds the columns already hashed by an earlier part."""
    key = (id(frame), column)
    if seen is not None and key in seen:
        return seen[key]
    h = hashlib.blake2b(digest_size=_DIGEST)
    _update_series(h, frame[column])
    if seen is not None:
        seen[key] = h.digest()
    return h.digest()


def part_key(part: Part, data: Dataset, axis: _Axis, seen: dict[Any, bytes] | None = None) -> str:
    """The hex digest of everything ``part`` reads of ``data`` (the data of ``compute``,
    ids already float-coded), of every setting and of ``axis``. A table's digest in
    ``data.digests`` stands for its text columns only: numbers, dates and the coded ids
    (which depend on every table) are cheap to hash and always are, so a digest that
    missed a derivation (MRR from Invoices) cannot make a number stale."""
    h = hashlib.blake2b(digest_size=_DIGEST)
    h.update(f"memo {MEMO_VERSION} {part.name}\0".encode())
    h.update(code_version())
    h.update(repr(sorted(data.settings.values.items())).encode() + b"\0")
    h.update(repr((axis.base, axis.size, axis.periods, axis.labels, axis.reported)).encode())
    coded = set(encoded_columns())
    for table in sorted(part.columns):
        h.update(f"\0table {table}\0".encode())
        h.update(repr(sorted(data.absent.get(table, ()))).encode())
        frame = data.tables.get(table)
        if frame is None:
            h.update(b"no table")
            continue
        if table == "Usage" and data.usage_summary is not None:
            continue  # the engine reads the summary alone (its digest is below), not rows
        digest = data.digests.get(table)
        _update_index(h, frame.index)
        for column in part.columns[table]:
            if column not in frame.columns:
                h.update(f"no column {column}\0".encode())
            elif (
                digest is None
                or (table, column) in coded
                or not pd.api.types.is_string_dtype(frame[column].dtype)
            ):
                h.update(_column_digest(frame, column, seen))
        if digest is not None:  # stands for the text columns, the slow ones to hash
            h.update(f"digest {digest}\0".encode())
    if "Usage" in part.columns and data.usage_summary is not None:  # Usage summarised
        h.update(b"usage summary\0" + data.usage_summary.digest())
    return h.hexdigest()


# --- the store -----------------------------------------------------------------------


@dataclass
class Memo:
    """The memo of one workbook's computes, in ``directory`` (created when first written).

    ``hits`` and ``misses`` list the parts found and computed, in order, since creation."""

    directory: Path
    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        # The column digests of the Dataset of the current compute, shared by its parts
        # (a compute's Dataset, its ids coded, is a new object that lives through it; it
        # is held here so that its id cannot be another object's meanwhile).
        self._seen_data: Dataset | None = None
        self._seen: dict[Any, bytes] = {}

    def _digests_of(self, data: Dataset) -> dict[Any, bytes]:
        if self._seen_data is not data:
            self._seen_data, self._seen = data, {}
        return self._seen

    def path(self, part: Part, key: str) -> Path:
        return self.directory / f"{part.name}-{key}{_SUFFIX}"

    def load(self, part: Part, key: str) -> tuple[Any, list[Issue]] | None:
        """The stored result and issues of ``part`` under ``key``; None for a miss (no
        file, or one that is truncated, corrupt or of another version)."""
        try:
            blob = self.path(part, key).read_bytes()
        except OSError:
            return None
        head = len(_MAGIC) + 4 + _DIGEST
        if len(blob) < head or not blob.startswith(_MAGIC):
            return None
        version = int.from_bytes(blob[len(_MAGIC) : len(_MAGIC) + 4], "little")
        payload = blob[head:]
        digest = hashlib.blake2b(payload, digest_size=_DIGEST).digest()
        if version != MEMO_VERSION or digest != blob[len(_MAGIC) + 4 : head]:
            return None
        try:
            stored_key, value, issues = pickle.loads(payload)
        except Exception:  # a checksummed file of this version that still will not load
            return None
        if stored_key != key or not all(isinstance(i, Issue) for i in issues):
            return None
        return value, list(issues)

    def store(self, part: Part, key: str, value: Any, issues: list[Issue]) -> None:
        """Write ``part``'s result atomically and remove its entries of other keys; a
        directory that cannot be written is left alone (the memo is only a speed-up)."""
        try:
            payload = pickle.dumps((key, value, list(issues)), protocol=5)
            blob = (
                _MAGIC
                + MEMO_VERSION.to_bytes(4, "little")
                + hashlib.blake2b(payload, digest_size=_DIGEST).digest()
                + payload
            )
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{part.name}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, self.path(part, key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return
        self._prune(part, key)

    def _prune(self, part: Part, key: str) -> None:
        """Remove the part's entries of other keys and its temp files (a killed run's; one
        of a run writing at this moment then fails to be renamed, which is only a miss)."""
        keep = self.path(part, key).name
        try:
            for p in [
                *self.directory.glob(f"{part.name}-*{_SUFFIX}"),
                *self.directory.glob(f".{part.name}-*.tmp"),
            ]:
                if p.name != keep:
                    p.unlink(missing_ok=True)
        except OSError:
            pass

    def run(
        self,
        part: Part,
        data: Dataset,
        axis: _Axis,
        issues: list[Issue],
        fn: Callable[[list[Issue]], T],
    ) -> T:
        """``fn(new_issues)``'s result, reused when ``part``'s inputs are unchanged; the
        issues it adds go onto ``issues`` in order, the same on a hit as on a miss."""
        value, added = self.reuse(part, part_key(part, data, axis, self._digests_of(data)), fn)
        issues.extend(added)
        return value

    def reuse(self, part: Part, key: str, fn: Callable[[list[Issue]], T]) -> tuple[T, list[Issue]]:
        """``part``'s stored result and issues under ``key``, else ``fn(new_issues)``'s,
        stored; noted as a hit or a miss."""
        found = self.load(part, key)
        if found is not None:
            self.hits.append(part.name)
            return found
        added: list[Issue] = []
        value = fn(added)
        self.misses.append(part.name)
        self.store(part, key, value, added)
        return value, added


def run_derived(memo: Memo | None, name: str, inputs: Sequence[Any], fn: Callable[[], T]) -> T:
    """``fn()``, reused when ``inputs`` (the exact values ``fn`` reads, already derived
    from the data: a few columns of some rows, a category per row) are those of the
    last compute; for a part whose inputs change less often than the columns they come
    from (the feedback themes read the comments and their NPS categories, not the
    scores). The key is a digest of the inputs, in order, and of the code."""
    if memo is None:
        return fn()
    h = hashlib.blake2b(digest_size=_DIGEST)
    h.update(code_version() + f"\0derived {name}\0".encode())
    for value in inputs:
        series = value if isinstance(value, pd.Series) else pd.Series(np.asarray(value))
        _update_series(h, series.rename(None).reset_index(drop=True))
    return memo.reuse(Part(name, {}), h.hexdigest(), lambda _: fn())[0]


def run_part(
    memo: Memo | None,
    part: Part,
    data: Dataset,
    axis: _Axis,
    issues: list[Issue],
    fn: Callable[[list[Issue]], T],
) -> T:
    """``fn(issues)``, through ``memo`` when there is one."""
    if memo is None:
        return fn(issues)
    return memo.run(part, data, axis, issues, fn)


__all__ = [
    "HEALTH", "IMPACT", "MEMO_VERSION", "PARTS", "PREDICTIVE", "USAGE", "Memo", "Part", "part_key",
    "run_derived",
]  # fmt: skip
