"""Reading and computing at scale: time and peak memory, separately.

Builds once (cached in benchmarks/.cache) a workbook with 40,000 customers, 40,000 x 24
months of MRR (960,000 rows), 500,000 survey answers, 300,000 orders, 100,000 tickets and
1,000,000 usage rows, then measures in fresh processes:

- the floor: a bare ``pd.read_excel(engine="calamine")`` of the same input sheets;
- reading: ``cxkpi_xl.reader.read`` (calamine, normalising and validating every row), in
  parallel threads and, for comparison, in one (``CXKPI_READ_THREADS=1``);
- computing: ``cxkpi_xl.engine.compute`` on the read data, with and without breakdowns.

Targets on the 2-core machine: compute <= 10 s, peak RSS <= 2 GB, reading within 1.3x of
the floor.

    python benchmarks/engine.py [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
BOOK = CACHE / "engine_large.xlsx"
SHEETS = ["Customers", "MRR", "Orders", "Surveys", "Tickets", "Usage", "Health", "Funnel", "Costs"]


def build() -> None:
    import numpy as np
    import pandas as pd

    from cxkpi_xl.sample import generate, write_workbook

    t0 = time.perf_counter()
    tables = generate("large", seed=1)
    # MRR as the full 40,000 x 24 grid: months without revenue are rows of 0.
    mrr = tables["MRR"]
    ids = tables["Customers"]["customer_id"].to_numpy()
    months = pd.date_range(mrr["month"].min(), periods=24, freq="MS")
    grid = pd.DataFrame({"customer_id": np.repeat(ids, 24), "month": np.tile(months, len(ids))})
    tables["MRR"] = grid.merge(mrr, on=["customer_id", "month"], how="left").fillna({"mrr": 0.0})
    CACHE.mkdir(exist_ok=True)
    write_workbook(tables, BOOK)
    rows = {k: len(v) for k, v in tables.items()}
    print(f"built {BOOK.name} in {time.perf_counter() - t0:.0f} s: {rows}")


PHASES = {
    "floor": "import pandas as pd\n"
    f"pd.read_excel({str(BOOK)!r}, sheet_name={SHEETS!r}, engine='calamine')",
    "read": "from cxkpi_xl.reader import read\n"
    f"data = read({str(BOOK)!r})\nextra = {{'issues': len(data.issues)}}",
    "read_one_thread": "import os\nos.environ['CXKPI_READ_THREADS'] = '1'\n"
    "from cxkpi_xl.reader import read\n"
    f"data = read({str(BOOK)!r})\nextra = {{'issues': len(data.issues)}}",
    "compute": "from cxkpi_xl.reader import read\nfrom cxkpi_xl.engine import compute\n"
    f"data = read({str(BOOK)!r})\nimport resource\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "t1 = time.perf_counter(); r = compute(data, breakdowns=False); t_plain = time.perf_counter() - t1\n"
    "t1 = time.perf_counter(); r = compute(data); t_full = time.perf_counter() - t1\n"
    "extra = {'compute_s': t_plain, 'compute_with_breakdowns_s': t_full, 'rss_before_compute_mb': before / 1024, 'periods': len(r.periods)}",
}

RUNNER = """
import json, resource, sys, time
t0 = time.perf_counter()
extra = {}
{code}
print(json.dumps(dict(seconds=time.perf_counter() - t0,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra)))
"""


def run_code(code: str, *argv: str) -> dict:
    """Run ``code`` in a fresh process (``sys.argv[1:]`` = ``argv``); its seconds, peak
    RSS and whatever it put into ``extra``."""
    script = RUNNER.replace("{code}", code)
    out = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def large_book(doc: str | None) -> Path:
    """The cached large workbook, built first if missing or ``--rebuild`` is given."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.rebuild or not BOOK.exists():
        build()
    return BOOK


def run(phase: str) -> dict:
    return run_code(PHASES[phase])


def main() -> None:
    large_book(__doc__)
    print(f"{BOOK.name}: {BOOK.stat().st_size / 2**20:.0f} MiB")
    floor = run("floor")
    read = run("read")
    one = run("read_one_thread")
    comp = run("compute")
    print(
        f"floor  pd.read_excel(calamine)  {floor['seconds']:6.1f} s  peak {floor['peak_rss_mb']:6.0f} MB"
    )
    print(
        f"read   cxkpi_xl.reader.read     {read['seconds']:6.1f} s  peak {read['peak_rss_mb']:6.0f} MB"
        f"  ratio to floor {read['seconds'] / floor['seconds']:.2f}  ({read['issues']} issues)"
    )
    print(
        f"read   in one thread            {one['seconds']:6.1f} s  peak {one['peak_rss_mb']:6.0f} MB"
        f"  ratio to floor {one['seconds'] / floor['seconds']:.2f}  (CXKPI_READ_THREADS=1)"
    )
    print(f"compute (no breakdowns)         {comp['compute_s']:6.1f} s")
    print(
        f"compute (with breakdowns)       {comp['compute_with_breakdowns_s']:6.1f} s"
        f"  peak {comp['peak_rss_mb']:6.0f} MB ({comp['rss_before_compute_mb']:.0f} MB after reading)"
        f"  {comp['periods']} periods"
    )


if __name__ == "__main__":
    main()
