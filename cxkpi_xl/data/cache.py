"""The read cache: each input table of a workbook, validated, kept in the user's cache
directory, so that a refresh re-reads only the tables whose parts changed; and the stamp
of the last refresh, so that a refresh with nothing changed does nothing.

What a table's validated rows depend on, and how each is checked without reading it:

- its sheet part, the sheet's relationships and its Table parts (the range, the header
  names), and, for a table read from a sheet by name, every Table part of the book (a new
  Excel Table of that name would be read instead): the CRC-32 and size of each, from the
  zip directory;
- the sheet's name and part (``xl/workbook.xml`` and its relationships are reduced to the
  sheet -> part map, so a new sheet or another active tab does not count), the 1904 date
  system flag;
- the shared strings its text cells use: at the first read, the indices the sheet uses
  (a streaming scan of its ``t="s"`` cells) and a hash of those strings are kept; when
  ``sharedStrings.xml`` changed, the new strings at those indices are hashed again;
- the number format of each cell style (``styles.xml``): whether a number is a date.
  Styles are only ever appended (our own refresh, Excel), so a table is unchanged when the
  formats of the styles that existed at its read are the same now;
- every resolved setting (the workbook's and ``--set``), the product's and the cache's
  version;
- the day/month order of the source's other date columns, for a table that took it:
  kept, and compared with the order the source shows now.

Anything not as expected (a missing, truncated or corrupt file, another version, a file
written by a killed process) is ignored and rebuilt. Files are written atomically (a
temporary file, fsync, rename), the manifest last, with the workbook's file mode; they hold
only the workbook's own data. pyarrow (Parquet) is imported when the cache is used.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .zipparts import state_of

if TYPE_CHECKING:
    import pandas as pd

    from .issues import Issue
    from .reader import Dataset, TableRead

CACHE_VERSION = 2
"""The layout of the cache's files: another version's files are ignored."""
ENV = "CXKPI_CACHE_DIR"
"""The environment variable that puts the cache somewhere else (the tests use it)."""
STAMP = "stamp.json"


def cache_root() -> Path:
    """The cache's folder: ``$CXKPI_CACHE_DIR``, else the user's cache directory."""
    given = os.environ.get(ENV)
    if given:
        return Path(given)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cxkpi-xl", appauthor=False))


def book_dir(path: Path, root: Path | None = None) -> Path:
    """The cache folder of one workbook (by its resolved path)."""
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return (root or cache_root()) / key


def _version() -> str:
    """The product's version (the package above is loaded whenever this module is)."""
    return str(sys.modules[__name__.split(".")[0]].__version__)


READING = ("pandas", "numpy", "python_calamine", "openpyxl", "pyarrow", "defusedxml")
"""The libraries reading depends on."""
COMPUTING = ("scipy", "statsmodels")
"""And those the Report depends on besides."""


def libraries(names: tuple[str, ...]) -> dict[str, list[int] | None]:
    """Each library's installed file (modification time and size), found without
    importing it: an upgrade or reinstall shows as a change."""
    import importlib.util

    out: dict[str, list[int] | None] = {}
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
            st = os.stat(spec.origin) if spec is not None and spec.origin else None
        except (ImportError, ValueError, OSError):
            st = None
        out[name] = None if st is None else [st.st_mtime_ns, st.st_size]
    return out


def zip_state(path: Path) -> dict[str, list[int]]:
    """Each part's [CRC-32, size] from the zip directory (nothing is inflated)."""
    with zipfile.ZipFile(path) as z:
        return state_of(z)


_BOOK_DIR = re.compile(r"[0-9a-f]{32}")


def _books(root: Path) -> list[Path]:
    """The workbooks' folders in the cache (nothing else that may be in that folder)."""
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and _BOOK_DIR.fullmatch(p.name)]


def clear(root: Path | None = None) -> int:
    """Remove the cache's entries (only its own folders, whatever else
    ``$CXKPI_CACHE_DIR`` holds); returns how many workbooks' entries it held."""
    root = root or cache_root()
    books = _books(root)
    for folder in books:
        shutil.rmtree(folder)
    with contextlib.suppress(OSError):
        root.rmdir()  # only if nothing else is in it
    return len(books)


def info(root: Path | None = None) -> tuple[Path, int, int]:
    """(the cache's folder, how many workbooks it holds, its size in bytes)."""
    root = root or cache_root()
    books = _books(root)
    size = sum(f.stat().st_size for b in books for f in b.rglob("*") if f.is_file())
    return root, len(books), size


# --- files ----------------------------------------------------------------------------


def _file_mode(book: Path) -> int:
    return stat.S_IMODE(book.stat().st_mode) & 0o666


def _write_atomic(target: Path, data: bytes, mode: int) -> None:
    """Write a file whole or not at all: a temporary file, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_private_dir(folder: Path) -> None:
    """The folder, made readable by the user alone (the cache holds the workbook's data)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_bytes())
    except (OSError, ValueError):
        return None


# --- the stamp of the last refresh ------------------------------------------------------


def _overrides_key(overrides: Mapping[str, Any] | None) -> list[list[str]]:
    return sorted([str(k).strip().lower(), str(v)] for k, v in (overrides or {}).items())


def _stamped_parts(state: Mapping[str, list[int]]) -> dict[str, list[int]]:
    # docProps (who saved it, when) is never read; every other part is.
    return {k: v for k, v in state.items() if not k.lower().startswith("docprops/")}


def _stamp_record(
    book: Path, overrides: Mapping[str, Any] | None, state: Mapping[str, list[int]]
) -> dict[str, Any]:
    """What a stamp records of ``book`` in zip directory ``state``, and what
    :func:`nothing_changed` compares it with."""
    return {
        "cache": CACHE_VERSION,
        "product": _version(),
        "book": str(book.resolve()),
        "overrides": _overrides_key(overrides),
        "libraries": libraries(READING + COMPUTING),
        "parts": _stamped_parts(state),
    }


def stamp(
    book: Path,
    overrides: Mapping[str, Any] | None,
    read_parts: Mapping[str, list[int]] | None = None,
    root: Path | None = None,
) -> bool:
    """After a refresh wrote ``book``: record its parts (CRC-32 and size), the overrides
    and the version, so that the next refresh can see that nothing changed. ``read_parts``
    are the input parts the refresh read: if one of them is not the same in the written
    file (someone saved it in between), nothing is recorded. Returns whether it was."""
    try:
        state = zip_state(book)
        if read_parts and any(state.get(p) != v for p, v in read_parts.items()):
            return False
        folder = book_dir(book, root)
        make_private_dir(folder)
        data = _stamp_record(book, overrides, state)
        _write_atomic(folder / STAMP, json.dumps(data).encode(), _file_mode(book))
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return True


def nothing_changed(
    book: Path, overrides: Mapping[str, Any] | None, root: Path | None = None
) -> bool:
    """Whether ``book`` is exactly as the last refresh wrote it (every part but docProps),
    with the same overrides and version: then a refresh would write the same Report. Reads
    only the zip directory and one small file; imports neither pandas nor numpy."""
    try:
        data = _read_json(book_dir(book, root) / STAMP)
        if not isinstance(data, dict):
            return False
        expected = _stamp_record(book, overrides, zip_state(book))
    except (OSError, zipfile.BadZipFile, ValueError, ImportError):
        return False
    return data == expected


def forget_stamp(book: Path, root: Path | None = None) -> None:
    with contextlib.suppress(OSError):
        (book_dir(book, root) / STAMP).unlink()


# --- where each table lives --------------------------------------------------------------

_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]*>")
_ATTR = re.compile(rb'([\w:]+)\s*=\s*["\']([^"\']*)["\']')


def _rels(z: zipfile.ZipFile, names: Mapping[str, str], part: str) -> list[tuple[str, str]]:
    """(type, resolved part) of each internal relationship of ``part``."""
    folder, _, file = part.rpartition("/")
    rels = names.get(f"{folder}/_rels/{file}.rels".lower())
    if rels is None:
        return []
    out = []
    for m in _RELATIONSHIP.finditer(z.read(rels)):
        attrs = {k.decode(): v.decode() for k, v in _ATTR.findall(m.group(0))}
        if attrs.get("TargetMode") == "External":
            continue
        target = attrs.get("Target", "")
        joined = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}"
        resolved = names.get(posixpath.normpath(joined).lower())
        if resolved is not None:
            out.append((attrs.get("Type", ""), resolved))
    return out


class _Book:
    """What the zip directory and the small parts say about a workbook's input tables."""

    def __init__(self, path: Path):
        from .schema import TABLE_SHEETS, TABLES
        from .zipparts import _package_sheets

        self.state = zip_state(path)
        with zipfile.ZipFile(path) as z:
            names = {n.lower(): n for n in z.namelist()}
            sheets = _package_sheets(z)
            workbook = names.get("xl/workbook.xml", "xl/workbook.xml")
            book_rels = _rels(z, names, workbook)
            self.date1904 = re.search(rb'date1904\s*=\s*"(1|true)"', z.read(workbook)) is not None
            styles = next((p for t, p in book_rels if t.endswith("/styles")), None)
            self.formats = _style_formats(z.read(styles)) if styles else []
            self.sst = next((p for t, p in book_rels if t.endswith("/sharedStrings")), None)
            all_tables = {
                p: self.state[p] for p in self.state if p.lower().startswith("xl/tables/")
            }
            table_sheet = {t: name for name, p in sheets.items() for t in p.tables}
            by_lower = {n.lower(): n for n in sheets}
            self.sources: dict[str, dict[str, Any]] = {}
            for table in TABLES:
                home = table_sheet.get(table.name.lower())
                kind = "table"
                if home is None:
                    home = by_lower.get(TABLE_SHEETS[table.name].lower())
                    kind = "sheet"
                    if home is None or table.name == "HealthWeights":
                        continue
                part = sheets[home].name
                deps = {part: self.state[part]}
                folder, _, file = part.rpartition("/")
                rels = names.get(f"{folder}/_rels/{file}.rels".lower())
                if rels is not None:
                    deps[rels] = self.state[rels]
                for _, target in _rels(z, names, part):
                    if target.lower().startswith("xl/tables/"):
                        deps[target] = self.state[target]
                if kind == "sheet":
                    deps.update(all_tables)
                self.sources[table.name] = {
                    "kind": kind,
                    "sheet": home,
                    "part": part,
                    "deps": dict(sorted(deps.items())),
                }
        self._strings: list[bytes] | None = None
        self._path = path

    def strings(self) -> list[bytes]:
        """The shared strings' raw XML, by index (parsed once, when first needed)."""
        if self._strings is None:
            if self.sst is None:
                self._strings = []
            else:
                with zipfile.ZipFile(self._path) as z:
                    self._strings = _shared_strings(z.read(self.sst))
        return self._strings


_NUMFMT = re.compile(rb"<numFmt\b[^>]*>")
_CELLXFS = re.compile(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", re.DOTALL)
_XF = re.compile(rb"<xf\b[^>]*>")


def _style_formats(styles: bytes) -> list[str]:
    """The number format (its id and, for a custom one, its code) of each cell style."""
    codes = {}
    for m in _NUMFMT.finditer(styles):
        attrs = dict(_ATTR.findall(m.group(0)))
        codes[attrs.get(b"numFmtId", b"")] = attrs.get(b"formatCode", b"")
    block = _CELLXFS.search(styles)
    out = []
    for m in _XF.finditer(block.group(1) if block else b""):
        attrs = dict(_ATTR.findall(m.group(0)))
        fid = attrs.get(b"numFmtId", b"0")
        out.append(f"{fid.decode()}:{codes.get(fid, b'').decode('utf-8', 'replace')}")
    return out


_SI = re.compile(rb"<si\b[^>]*?(?:/>|>(.*?)</si>)", re.DOTALL)


def _shared_strings(sst: bytes) -> list[bytes]:
    return [m.group(1) or b"" for m in _SI.finditer(sst)]


_SHARED_CELL = re.compile(rb"<c\b[^>]*?\bt\s*=\s*[\"']s[\"'][^>]*>\s*<v>\s*(\d+)\s*</v>")


def shared_indices(z: zipfile.ZipFile, part: str) -> list[int]:
    """The shared-string indices a sheet's cells use, sorted: a streaming scan of its
    ``t="s"`` cells, holding one chunk at a time."""
    found: set[int] = set()
    rest = b""
    with z.open(part) as f:
        while chunk := f.read(1 << 22):
            block = rest + chunk
            cut = block.rfind(b"</c>")
            if cut == -1:
                rest = block
                continue
            body, rest = block[: cut + 4], block[cut + 4 :]
            found.update(map(int, _SHARED_CELL.findall(body)))
    found.update(map(int, _SHARED_CELL.findall(rest)))
    return sorted(found)


def _strings_hash(strings: list[bytes], indices: list[int]) -> str | None:
    digest = hashlib.sha256()
    for i in indices:
        if i >= len(strings):
            return None
        digest.update(len(strings[i]).to_bytes(8, "little"))
        digest.update(strings[i])
    return digest.hexdigest()


def _pack(indices: list[int]) -> str:
    import array

    return base64.b64encode(zlib.compress(array.array("q", indices).tobytes())).decode()


def _unpack(text: str) -> list[int]:
    import array

    values = array.array("q")
    values.frombytes(zlib.decompress(base64.b64decode(text)))
    return values.tolist()


# --- issue values, exactly --------------------------------------------------------------


def _encode(v: Any) -> Any:
    """A value of an Issue as JSON that gives back the same type (TypeError if unknown)."""
    import numpy as np
    import pandas as pd

    if v is None:
        return None
    if v is pd.NaT:
        return {"nat": 1}
    if isinstance(v, np.generic):
        if isinstance(v, np.datetime64):
            return {"np64": str(v), "unit": np.datetime_data(v.dtype)[0]}
        return {"np": v.dtype.str, "v": _encode(v.item())}
    if type(v) is bool:
        return {"b": v}
    if type(v) is int:
        return {"i": str(v)}
    if type(v) is float:
        return {"f": repr(v)}
    if type(v) is str:
        return {"s": v}
    if type(v) is pd.Timestamp:
        return {"ts": v.isoformat(), "unit": v.unit}
    if type(v) is dt.datetime and v.tzinfo is None:
        return {"dt": v.isoformat()}
    if type(v) is dt.date:
        return {"d": v.isoformat()}
    if type(v) is dt.time and v.tzinfo is None:
        return {"t": v.isoformat()}
    if type(v) is dt.timedelta:
        return {"td": [v.days, v.seconds, v.microseconds]}
    raise TypeError(f"cannot keep a {type(v).__name__} exactly")


def _decode(v: Any) -> Any:
    import numpy as np
    import pandas as pd

    if v is None:
        return None
    if "nat" in v:
        return pd.NaT
    if "np64" in v:
        return np.datetime64(v["np64"], v["unit"])
    if "np" in v:
        return np.dtype(v["np"]).type(_decode(v["v"]))
    if "b" in v:
        return bool(v["b"])
    if "i" in v:
        return int(v["i"])
    if "f" in v:
        return float(v["f"])
    if "s" in v:
        return str(v["s"])
    if "ts" in v:
        return pd.Timestamp(v["ts"]).as_unit(v["unit"])
    if "dt" in v:
        return dt.datetime.fromisoformat(v["dt"])
    if "d" in v:
        return dt.date.fromisoformat(v["d"])
    if "t" in v:
        return dt.time.fromisoformat(v["t"])
    if "td" in v:
        days, seconds, micro = v["td"]
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    raise ValueError("unknown value")


def _issues_json(issues: list[Issue]) -> list[list[Any]]:
    out = []
    for i in issues:
        if not isinstance(i.row, int | None) or isinstance(i.row, bool):
            raise TypeError("an issue's row is not a number")
        out.append([i.sheet, i.row, i.column, _encode(i.value), i.problem, i.action])
    return out


def _issues_from(rows: list[list[Any]]) -> list[Issue]:
    from .issues import Issue

    return [Issue(s, r, c, _decode(v), p, a) for s, r, c, v, p, a in rows]


# --- tables as Parquet ---------------------------------------------------------------


def _frame_table(frame: pd.DataFrame) -> tuple[Any, dict[str, str]]:
    """The frame as an Arrow table (its own copy of the values) and its dtypes. A column
    of Python objects is kept only if it holds text and blanks alone (None stays None):
    Arrow refuses text mixed with numbers, and any other column type is refused here."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in frame.columns:
        if frame[name].dtype == object:
            kind = table.schema.field(str(name)).type
            if not (pa.types.is_string(kind) or pa.types.is_null(kind)):
                raise TypeError(f"column {name} holds {kind}, not only text")
            nulls = table.column(str(name)).null_count
            if nulls and nulls != int((frame[name].to_numpy() == None).sum()):  # noqa: E711
                raise TypeError(f"column {name} holds NaN, which would come back as None")
    return table, {str(c): str(frame[c].dtype) for c in frame.columns}


def _dtype(name: str) -> Any:
    import numpy as np

    return bool if name == "bool" else object if name == "object" else np.dtype(name)


def _copy_on_write() -> bool:
    """Whether pandas copies a frame's shared values before any change (always from
    pandas 3; an option in pandas 2)."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return bool(pd.get_option("mode.copy_on_write") is True)


def _table_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _frame_from(data: bytes, dtypes: Mapping[str, str]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [name for name, dtype in dtypes.items() if dtype == "object"]
    # Text as Parquet keeps it, a dictionary of distinct values and a code per row: no
    # string is made per row, and each distinct value becomes one str object, as the
    # reader makes them.
    table = pq.read_table(pa.BufferReader(data), read_dictionary=text).unify_dictionaries()
    if table.column_names != list(dtypes):
        raise ValueError("columns differ")
    columns: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        column = table.column(name)
        if dtype == "object":
            if not pa.types.is_dictionary(column.type):  # no text at all (every row blank)
                column = column.dictionary_encode()
            chunks = column.chunks
            values = chunks[0].dictionary.to_pylist() if chunks else []
            lookup = np.array([*values, None], dtype=object)
            codes = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in chunks]
            picked = np.concatenate(codes) if codes else np.zeros(0, np.int64)
            columns[name] = pd.Series(lookup[picked], dtype=object)
        else:
            columns[name] = column.to_pandas().astype(_dtype(dtype))
    return pd.DataFrame(columns)


_SUMMARY_ARRAYS = (
    "days", "day_users", "months", "month_users", "t_month", "t_customer", "t_feature",
)  # fmt: skip
_SUMMARY_TEXTS = ("customers", "features")


def _summary_bytes(summary: Any) -> bytes:
    """A Usage summary (:class:`~cxkpi_xl.data.usage.UsageSummary`) as an ``.npz`` without
    pickles: its integer arrays, and its ids and features as their UTF-8 bytes end to end
    with their end offsets (TypeError for anything but text)."""
    import numpy as np

    arrays = {name: getattr(summary, name) for name in _SUMMARY_ARRAYS}
    for name in _SUMMARY_TEXTS:
        values = getattr(summary, name)
        if not all(type(v) is str for v in values):
            raise TypeError(f"the summary's {name} are not all text")
        encoded = [v.encode("utf-8", "strict") for v in values]
        arrays[f"{name}_bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays[f"{name}_ends"] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _summary_from(data: bytes) -> Any:
    """The Usage summary of :func:`_summary_bytes`."""
    import numpy as np

    from .usage import UsageSummary

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        fields = {name: z[name] for name in _SUMMARY_ARRAYS}
        for name in _SUMMARY_TEXTS:
            raw, ends = z[f"{name}_bytes"].tobytes(), z[f"{name}_ends"].tolist()
            starts = [0, *ends[:-1]] if ends else []
            texts = [raw[a:b].decode("utf-8", "strict") for a, b in zip(starts, ends, strict=True)]
            fields[name] = np.array([*texts, None], dtype=object)[:-1]  # object, never 'U'
    return UsageSummary(**fields)


# --- the cache -----------------------------------------------------------------------


class Cache:
    """The read cache of workbooks (``root``: the cache's folder, by default
    :func:`cache_root`). :meth:`read` is what :func:`~cxkpi_xl.data.reader.read` calls
    for a workbook given ``cache=``."""

    def __init__(self, root: Path | None = None, background: bool = False):
        self.root = root
        self._pending: list[Any] = []
        self._writer: Any = None
        if background:  # the kept tables are written while the caller computes: finish()
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache")
        self.read_parts: dict[str, list[int]] = {}
        """The parts the last read depended on, with their CRC-32 and size."""
        self.reused: list[str] = []
        self.reread: list[str] = []
        self._libraries = libraries(READING)

    def read(self, path: Path, overrides: Mapping[str, Any] | None = None) -> Dataset:
        from .reader import SourceError, UnknownEvidence, read

        try:
            try:
                return self._read(path, overrides, reuse=True)
            except UnknownEvidence:  # a kept table's date evidence is needed: read all
                return self._read(path, overrides, reuse=False)
        except (SourceError, ValueError, MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except Exception:  # anything odd in the cache's own work: read as if it were not there
            self.read_parts, self.reused, self.reread = {}, [], []
            return read(path, overrides)

    def _read(self, path: Path, overrides: Mapping[str, Any] | None, reuse: bool) -> Dataset:
        from concurrent.futures import ThreadPoolExecutor

        from . import reader as r

        book = _Book(path)
        if not book.sources:  # the reader says what is wrong
            r._workbook_tables(path)
        folder = book_dir(path, self.root)
        # The kept entries whose parts, strings and styles are as they were; the settings
        # are known only once the workbook is opened, which reads the other tables too.
        entries: dict[str, dict[str, Any]] = {}
        if reuse:
            for name, src in book.sources.items():
                entry = self._check(folder, name, self._key(path, book, src, None), book)
                if entry is not None:
                    entries[name] = entry
        wanted = [n for n in book.sources if n not in entries]
        # The kept tables are loaded in a thread while the changed ones are parsed (calamine
        # lets go of Python's lock while it parses); a load whose settings turn out to
        # differ is dropped.
        with ThreadPoolExecutor(max_workers=1) as pool:
            loads = {name: pool.submit(self._load, folder, e) for name, e in entries.items()}
            try:
                raw, raw_settings = r._workbook_tables(path, only=wanted)
            except BaseException:
                for f in loads.values():
                    f.cancel()
                raise
            settings, issues = r._resolve_settings(raw_settings, overrides)
            setting_key = repr(sorted(settings.values.items()))
            keys = {n: self._key(path, book, src, setting_key) for n, src in book.sources.items()}
            known: dict[str, TableRead] = {}
            digests: dict[str, str] = {}
            kept_summary = None  # Usage's, kept with it (used if Usage stays reloaded)
            for name, entry in entries.items():
                if entry["key"] != keys[name]:
                    loads[name].cancel()
                    continue
                got = loads[name].result()
                if got is not None:
                    known[name], digests[name], summary_of = got
                    if name == "Usage":
                        kept_summary = summary_of
        again = [n for n in entries if n not in known]  # other settings, a damaged file
        if again:
            raw.update(r._workbook_tables(path, only=again)[0])
        while True:
            try:
                reads = r._read_tables(raw, settings, known)
                break
            except r.StaleOrder as e:
                for name in e.tables:
                    known.pop(name)
                    digests.pop(name)
                raw.update(r._workbook_tables(path, only=e.tables)[0])
        self.reused, self.reread = list(known), list(reads)
        reads.update(known)
        from .invoices import use_invoices

        def frame(name: str) -> pd.DataFrame:  # as read, before MRR is made from Invoices
            got = reads.get(name)
            return (
                r._empty(r.TABLES_BY_NAME[name]) if got is None or got.frame is None else got.frame
            )

        from_invoices = use_invoices(settings, frame("MRR"), frame("Invoices"))
        data = r._dataset(reads, settings, issues, str(path))
        usage = data.tables.get("Usage")
        if "Usage" in known:
            data.usage_summary = kept_summary
        elif "Usage" in self.reread and usage is not None and len(usage):
            from .usage import UsageSummary

            # Kept with Usage, and the engine need not make it.
            data.usage_summary = UsageSummary.from_rows(usage)
        self.read_parts = {p: v for s in book.sources.values() for p, v in s["deps"].items()}
        if book.sst is not None:
            self.read_parts[book.sst] = book.state[book.sst]
        if zip_state(path) == book.state:  # not saved by someone while we read
            for name in self.reread:
                kept = data.usage_summary if name == "Usage" else None
                digest = self._store(path, folder, name, keys[name], book, reads[name], kept)
                if digest is not None:
                    digests[name] = digest
        data.digests = _digests(digests, reads, setting_key, from_invoices)
        return data

    def _key(self, path: Path, book: _Book, source: dict[str, Any], settings: str | None) -> dict:
        return {
            "cache": CACHE_VERSION,
            "product": _version(),
            "libraries": self._libraries,
            "book": str(path.resolve()),
            "date1904": book.date1904,
            "settings": settings,
            **source,
        }

    def _check(self, folder: Path, name: str, key: dict, book: _Book) -> dict[str, Any] | None:
        """A kept table's manifest if everything it depends on but the settings (compared
        once they are known) is as it was, else None."""
        entry = _read_json(folder / f"{name}.json")
        try:
            if not isinstance(entry, dict) or {**entry["key"], "settings": None} != key:
                return None
            formats = entry["formats"]
            if book.formats[: len(formats)] != formats:
                return None
            shared = entry["shared"]
            if shared is not None and (book.sst is None or book.state[book.sst] != shared["crc"]):
                if _strings_hash(book.strings(), _unpack(shared["indices"])) != shared["hash"]:
                    return None
            return entry
        except Exception:  # whatever is wrong with it, it is not trusted
            return None

    def _load(self, folder: Path, entry: dict[str, Any]) -> tuple[TableRead, str, Any] | None:
        """The kept table of a checked manifest, its digest and its kept Usage summary
        (None if none was kept); None if a file is not as written."""
        import pandas as pd

        from .reader import TableRead

        try:
            frame, got_summary = None, None
            if entry.get("summary") is not None:
                # Usage kept as its summary: the engine reads the summary alone, so its
                # rows are not kept (as a source's Usage summarised in its engine).
                frame = pd.DataFrame(
                    {c: pd.Series([], dtype=_dtype(d)) for c, d in entry["dtypes"].items()}
                )
            elif entry["file"] is not None:
                data = (folder / entry["file"]).read_bytes()
                if len(data) != entry["size"] or zlib.crc32(data) != entry["crc"]:
                    return None
                frame = _frame_from(data, entry["dtypes"])
            evidence = entry["evidence"]
            summary = entry.get("summary")
            if summary is not None:
                data = (folder / summary["file"]).read_bytes()
                if len(data) != summary["size"] or zlib.crc32(data) != summary["crc"]:
                    return None
                got_summary = _summary_from(data)
            return (
                TableRead(
                    entry["sheet"],
                    frame,
                    frozenset(entry["absent"]),
                    _issues_from(entry["matched_issues"]),
                    _issues_from(entry["issues"]),
                    None if evidence is None else frozenset(evidence),
                    bool(entry["order_used"]),
                    entry["order"],
                ),
                str(entry["digest"]),
                got_summary,
            )
        except Exception:  # whatever is wrong with it, it is not trusted
            return None

    def _store(
        self,
        path: Path,
        folder: Path,
        name: str,
        key: dict,
        book: _Book,
        got: TableRead,
        summary: Any = None,
    ) -> str | None:
        """Keep one table's read (with Usage, its ``summary``, when it can be kept: else
        the engine makes it again from the rows); returns its digest (None if it could
        not be kept)."""
        try:
            shared = None
            if book.sst is not None:
                with zipfile.ZipFile(path) as z:
                    indices = shared_indices(z, key["part"])
                if indices:
                    found = _strings_hash(book.strings(), indices)
                    if found is None:
                        return None
                    shared = {"crc": book.state[book.sst], "indices": _pack(indices), "hash": found}
            entry: dict[str, Any] = {
                "key": key,
                "formats": book.formats,
                "shared": shared,
                "sheet": got.sheet,
                "absent": sorted(got.absent),
                "matched_issues": _issues_json(got.matched_issues),
                "issues": _issues_json(got.issues),
                "evidence": None if got.evidence is None else sorted(got.evidence),
                "order_used": got.order_used,
                "order": got.order,
            }
            digest = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
            entry["digest"] = digest
            table: Any = None
            if got.frame is not None:
                # What is written must be the table as read, whatever the caller does to
                # the frame next: with copy-on-write (pandas 3) a shallow copy is that
                # snapshot and the writer converts it; else Arrow's copy is made now.
                table = got.frame.copy(deep=False) if _copy_on_write() else _frame_table(got.frame)
        except Exception:  # a table that cannot be kept is read again next time
            return None
        if self._writer is None:
            self._write(path, folder, name, entry, table, summary)
        else:
            self._pending.append(
                self._writer.submit(self._write, path, folder, name, entry, table, summary)
            )
        return digest

    def _write(
        self,
        path: Path,
        folder: Path,
        name: str,
        entry: dict[str, Any],
        table: Any,
        summary: Any,
    ) -> None:
        """Write one table's files and then its manifest (so a manifest is never seen
        before its files); anything that fails leaves the table to be read again."""
        import pandas as pd

        try:
            digest = entry["digest"]
            entry["file"] = None
            mode = _file_mode(path)
            make_private_dir(folder)
            packed = None
            if summary is not None:
                try:
                    packed = _summary_bytes(summary)
                except TypeError:  # ids that are not text: the engine makes it again
                    packed = None
            kept_files: set[str] = set()
            if packed is not None:
                entry["summary"] = {
                    "file": f"{name}-{digest[:16]}-summary.npz",
                    "size": len(packed),
                    "crc": zlib.crc32(packed),
                }
                kept_files.add(entry["summary"]["file"])
                _write_atomic(folder / entry["summary"]["file"], packed, mode)
            if table is not None and packed is not None:
                # Usage kept as its summary: its rows are never loaded again, only their
                # column types (for the empty frame that stands for them).
                entry["dtypes"] = (
                    {str(c): str(table[c].dtype) for c in table.columns}
                    if isinstance(table, pd.DataFrame)
                    else table[1]
                )
            elif table is not None:
                arrow, dtypes = _frame_table(table) if isinstance(table, pd.DataFrame) else table
                data = _table_bytes(arrow)
                entry.update(
                    file=f"{name}-{digest[:16]}.parquet",
                    size=len(data),
                    crc=zlib.crc32(data),
                    dtypes=dtypes,
                )
                kept_files.add(entry["file"])
                _write_atomic(folder / entry["file"], data, mode)
            _write_atomic(folder / f"{name}.json", json.dumps(entry).encode(), mode)
            for old in folder.glob(f"{name}-*"):
                if old.name not in kept_files and old.suffix in (".parquet", ".npz"):
                    with contextlib.suppress(OSError):
                        old.unlink()
        except Exception:  # a table that cannot be kept is read again next time
            return

    def finish(self) -> None:
        """Wait for the tables being written in the background (``background=True``)."""
        while self._pending:
            with contextlib.suppress(Exception):
                self._pending.pop(0).result()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None


def _digests(
    kept: Mapping[str, str], reads: Mapping[str, TableRead], settings: str, from_invoices: bool
) -> dict[str, str]:
    """Dataset.digests: each table's digest; a table the source lacks (or left out) is the
    empty table, and its digest says so; MRR made from Invoices digests MRR, Invoices, FX
    and the settings."""
    from .schema import TABLES

    out = {}
    for table in TABLES:
        got = reads.get(table.name)
        if table.name in kept:
            out[table.name] = kept[table.name]
        elif got is None or got.frame is None:
            empty = f"empty {table.name} {_version()}"
            out[table.name] = hashlib.sha256(empty.encode()).hexdigest()
    if from_invoices:
        parts = [out.get(n) for n in ("MRR", "Invoices", "FX")]
        if None in parts:
            out.pop("MRR", None)
        else:
            made = f"invoices {' '.join(map(str, parts))} {settings}"
            out["MRR"] = hashlib.sha256(made.encode()).hexdigest()
    return out


__all__ = ["Cache", "cache_root", "clear", "info", "nothing_changed", "stamp", "zip_state"]
