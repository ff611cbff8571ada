"""Refresh at scale, and at the speed of what changed: time and peak memory of a refresh
of the large generated workbook (the one benchmarks/engine.py builds and caches), in ONE
run, each in a fresh process:

- the floor: ``pd.read_excel(engine="calamine")`` of the same input sheets, nothing else;
- a cold refresh without the read cache (``refresh(cache=False)``);
- a cold refresh that fills the read cache (the first refresh a user makes);
- ``cxkpi refresh BOOK`` again with nothing changed: the whole process, start to exit;
- a refresh after one Surveys row changed, saved at package level as Excel would (the
  sheet part rewritten; this workbook keeps its text inline, so there are no shared
  strings to rebuild), the other tables reloaded from the cache.

Targets (issue 19): cold <= 0.6x the floor; nothing changed <= 0.2 s; one changed row
<= 0.35x the cold refresh; peak memory no higher than before.

    python benchmarks/refresh.py [--rebuild]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
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
done = refresh(sys.argv[1], stage=stage, cache=sys.argv[2] == 'cache')
stages[last[1]] = time.perf_counter() - last[0]
extra = {'stages': stages, 'periods': len(done.report.periods), 'kpis': len(done.report.kpis)}"""


def whole_process(*argv: str) -> dict:
    """Wall time and peak RSS of a whole command, start to exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "output": out.strip()}


def change_one_survey_row(book: Path) -> None:
    """Change one Surveys score as Excel would save it: the sheet part rewritten, every
    other part as it was."""
    with zipfile.ZipFile(book) as z:
        infos = z.infolist()
        parts = {i.filename: z.read(i) for i in infos}
    from cxkpi_xl.data.reader import _package_sheets

    with zipfile.ZipFile(book) as z:
        part = _package_sheets(z)["Surveys"].name
    xml = parts[part]
    m = re.search(rb'<c r="E1000"[^>]*><v>([^<]*)</v>', xml)
    assert m is not None, "no score in E1000"
    new = b"1" if m.group(1) != b"1" else b"2"
    parts[part] = xml[: m.start(1)] + new + xml[m.end(1) :]
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for info in infos:
            z.writestr(info, parts[info.filename], compress_type=zipfile.ZIP_DEFLATED)


def main() -> None:
    large_book(__doc__)
    cxkpi = str(Path(sys.executable).with_name("cxkpi"))
    with tempfile.TemporaryDirectory(dir=BOOK.parent) as tmp:
        os.environ["CXKPI_CACHE_DIR"] = str(Path(tmp) / "cache")  # a cache of its own
        book = Path(tmp) / BOOK.name
        shutil.copy(BOOK, book)
        floor = run_code(FLOOR.format(sheets=SHEETS), str(book))
        cold = run_code(REFRESH, str(book), "no-cache")
        filling = run_code(REFRESH, str(book), "cache")
        same = whole_process(cxkpi, "refresh", str(book), "-q")
        assert "nothing changed" in same["output"], same["output"]
        change_one_survey_row(book)
        one_row = run_code(REFRESH, str(book), "cache")
        size = book.stat().st_size
    load = os.getloadavg()
    print(f"{BOOK.name}: {BOOK.stat().st_size / 2**20:.0f} MiB (load average {load[0]:.1f})")
    print(
        f"floor   pd.read_excel(calamine)      {floor['seconds']:6.2f} s  peak {floor['peak_rss_mb']:6.0f} MB"
    )
    for label, r, base, name in (
        ("cold refresh, no cache", cold, floor, "floor"),
        ("cold refresh, fills the cache", filling, floor, "floor"),
        ("one Surveys row changed", one_row, cold, "cold"),
    ):
        stages = "  ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        print(
            f"{label:<30} {r['seconds']:6.2f} s  peak {r['peak_rss_mb']:6.0f} MB"
            f"  {r['seconds'] / base['seconds']:.2f}x {name}  ({stages})"
        )
    print(
        f"{'nothing changed (cxkpi, whole)':<30} {same['seconds']:6.2f} s  peak {same['peak_rss_mb']:6.0f} MB"
    )
    print(f"refreshed file {size / 2**20:.0f} MiB, {cold['periods']} periods, {cold['kpis']} KPIs")


if __name__ == "__main__":
    main()
