"""Refresh at scale: total time and peak memory of ``cxkpi refresh`` on the large
generated workbook (the one benchmarks/engine.py builds and caches), against the floor:
reading the same input sheets with ``pd.read_excel(engine="calamine")`` and nothing else.

Targets on the 2-core machine: ratio to the floor <= 1.5, peak RSS <= 2 GB.

    python benchmarks/refresh.py [--rebuild]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import BOOK, SHEETS, large_book, run_code

FLOOR = "import pandas as pd\npd.read_excel(sys.argv[1], sheet_name={sheets!r}, engine='calamine')"
REFRESH = """from cxkpi_xl.refresh import refresh
stages = {}
last = [time.perf_counter(), None]
def stage(name):
    now = time.perf_counter()
    if last[1]:
        stages[last[1]] = now - last[0]
    last[:] = [now, name]
done = refresh(sys.argv[1], stage=stage)
stages[last[1]] = time.perf_counter() - last[0]
extra = {'stages': stages, 'periods': len(done.report.periods), 'kpis': len(done.report.kpis)}"""


def main() -> None:
    large_book(__doc__)
    with tempfile.TemporaryDirectory(dir=BOOK.parent) as tmp:
        book = Path(tmp) / BOOK.name
        shutil.copy(BOOK, book)
        floor = run_code(FLOOR.format(sheets=SHEETS), str(book))
        first = run_code(REFRESH, str(book))  # adds Report and Data Issues
        again = run_code(REFRESH, str(book))  # replaces them
        size = book.stat().st_size
    print(f"{BOOK.name}: {BOOK.stat().st_size / 2**20:.0f} MiB")
    print(
        f"floor   pd.read_excel(calamine)  {floor['seconds']:6.1f} s  peak {floor['peak_rss_mb']:6.0f} MB"
    )
    for label, r in (("refresh (first)", first), ("refresh (again)", again)):
        stages = "  ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        print(
            f"{label:<16} {r['seconds']:6.1f} s  peak {r['peak_rss_mb']:6.0f} MB"
            f"  ratio to floor {r['seconds'] / floor['seconds']:.2f}  ({stages})"
        )
    print(
        f"refreshed file {size / 2**20:.0f} MiB, {first['periods']} periods, {first['kpis']} KPIs"
    )


if __name__ == "__main__":
    main()
