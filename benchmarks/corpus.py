"""Refresh every workbook of the real-workbook corpus (../shared/data/real-workbooks/,
436 files made by Excel and by spreadsheet libraries) and the hand-made files of
tests/test_corpus.py, with the input Tables grafted in; prints what was refused and why,
every problem found, and the time taken. tests/test_corpus.py runs a sample of the same.

    python benchmarks/corpus.py [--no-libreoffice] [NAME_SUBSTRING ...]
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.corpus import CORPUS, check, input_tables, libreoffice_opens
from tests.made import make_all


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".xlsx", ".xlsm"))
    if args:
        files = [f for f in files if any(a in f.name for a in args)]
    tables = input_tables()
    t0 = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files += make_all(work / "made")
        for i, f in enumerate(files):
            o = check(f, work / f"{i}", tables)
            outcomes.append(o)
            flag = "PROBLEM " if o.problems else ""
            print(f"{flag}{o.status:9} {f.parent.name}/{f.name} {o.message[:150]}", flush=True)
            for p in o.problems:
                print("    ", p[:300])
        t1 = time.perf_counter()
        if "--no-libreoffice" not in sys.argv:
            libreoffice_opens(outcomes, work)
        t2 = time.perf_counter()
    counts = collections.Counter(o.status for o in outcomes)
    bad = [o for o in outcomes if o.problems]
    print(f"\n{len(outcomes)} files: {dict(counts)}; {len(bad)} with problems")
    for o in bad:
        print(f"  {o.name}: {'; '.join(o.problems)[:300]}")
    lo = sum(o.libreoffice for o in outcomes)
    print(f"LibreOffice opened {lo} results of {counts['refreshed']} refreshed (and their inputs)")
    print(f"refresh and checks {t1 - t0:.0f} s, LibreOffice {t2 - t1:.0f} s")


if __name__ == "__main__":
    main()
