"""Cold ``compute`` on the large workbook's data: the total and each part, and peak memory.

Reads ``benchmarks/.cache/engine_large.xlsx`` (built by ``benchmarks/engine.py``) once, or
loads a pickle of its Dataset given with ``--pickle`` (reading is left out of the timings),
then runs ``compute(data)`` ONCE in this fresh process: cold, so the first-time imports of
scipy and statsmodels count, as in a refresh. Each part of the engine is timed by wrapping
the names ``compute`` calls; the parts add up to about the total (the rest is glue).
Issue 19's target: read + compute + write of a cold refresh at most 0.6x a bare
``pd.read_excel`` of the input sheets.

    python benchmarks/compute.py [--pickle /tmp/large_dataset.pkl] [--save-pickle PATH]
"""

from __future__ import annotations

import argparse
import functools
import pickle
import resource
import sys
import time
from pathlib import Path
from typing import Any

BOOK = Path(__file__).parent / ".cache" / "engine_large.xlsx"
PARTS = (
    "_encode_ids", "_axis", "_core", "_group_breakdowns", "_cx_to_revenue", "_cohorts",
    "_churn_by_reason", "_referrals_by_segment", "_themes", "_predictive", "cx_impact",
)  # fmt: skip
"""The names in ``cxkpi_xl.engine.assemble`` that ``compute`` calls, one per part."""


def _peak_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle", type=Path, help="a pickled Dataset to load instead")
    parser.add_argument("--save-pickle", type=Path, help="pickle the Dataset read here")
    args = parser.parse_args()

    if args.pickle is not None:
        with args.pickle.open("rb") as f:
            data = pickle.load(f)
    else:
        from cxkpi_xl.data.reader import read

        data = read(BOOK)
        if args.save_pickle is not None:
            with args.save_pickle.open("wb") as f:
                pickle.dump(data, f)
    loaded = _peak_mib()

    from cxkpi_xl.engine import assemble

    times: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    for name in PARTS:
        if hasattr(assemble, name):
            setattr(assemble, name, timed(name, getattr(assemble, name)))
    t0, c0 = time.perf_counter(), time.process_time()
    report = assemble.compute(data)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0

    customers = len(data.tables["Customers"])
    rows = sum(len(t) for t in data.tables.values())
    print(f"large data: {customers:,} customers, {rows:,} input rows; cold compute (one run)")
    for name in PARTS:
        if name in times:
            print(f"  {name:<22} {times[name]:7.2f} s")
    print(f"  {'rest (glue)':<22} {total - sum(times.values()):7.2f} s")
    print(f"  {'compute total':<22} {total:7.2f} s  ({cpu:.2f} s of CPU, all threads)")
    print(
        f"peak RSS: {loaded:,.0f} MiB after loading the data, {_peak_mib():,.0f} MiB after compute"
    )
    assert report.periods


if __name__ == "__main__":
    main()
