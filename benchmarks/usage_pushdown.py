"""The Usage push-down alone (``sources.usage_pushdown``: Usage validated and summarised
in DuckDB) on the Usage.parquet of benchmarks/.cache/sources-SCALE/ (made by
``benchmarks/sources.py``, not rebuilt here): each query's wall and CPU seconds, the total,
the peak RSS, the machine's load before and after, and a digest of the summary that does
not depend on the order DuckDB returns the triples in (to compare two versions' results).

CPU seconds say more than wall seconds on a machine shared with other work.

    python benchmarks/usage_pushdown.py [--scale 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    usage = CACHE / f"sources-{args.scale:g}" / "Usage.parquet"
    if not usage.exists():
        sys.exit(f"{usage} is missing: make it with benchmarks/sources.py --scale {args.scale:g}")

    import psutil

    import cxkpi_xl.data.sources as sources
    from cxkpi_xl.data.reader import read

    peak = [0]

    def watch() -> None:
        process = psutil.Process()
        while True:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    for name in ("_execute", "_arrow", "_cache"):
        original = getattr(sources, name)

        def timed(*a: Any, _f: Any = original, _name: str = name) -> Any:
            t, c = time.perf_counter(), cpu()
            out = _f(*a)
            print(
                f"  {_name:9} wall {time.perf_counter() - t:6.2f} s  cpu {cpu() - c:6.2f} s  "
                f"peak {peak[0] / 2**30:.2f} GiB",
                flush=True,
            )
            return out

        setattr(sources, name, timed)
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "Usage.parquet").symlink_to(usage)
        t, c = time.perf_counter(), cpu()
        data = read(folder)
        wall, used = time.perf_counter() - t, cpu() - c
    print(f"total      wall {wall:6.2f} s  cpu {used:6.2f} s  peak {peak[0] / 2**30:.2f} GiB")
    print("load average after: ", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    s = data.usage_summary
    if s is None:
        print("no summary: Usage was read row by row")
        return
    order = np.lexsort((s.t_feature, s.t_customer, s.t_month))
    h = hashlib.blake2b(digest_size=8)
    for a in (s.days, s.day_users, s.months, s.month_users):
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    for a in (s.t_month, s.t_customer, s.t_feature):
        h.update(np.ascontiguousarray(a[order], dtype=np.int64).tobytes())
    h.update(repr([list(s.customers), list(s.features)]).encode())
    print(
        f"summary {h.hexdigest()}: {len(s.days)} days, {len(s.t_month):,} triples, "
        f"{len(data.issues)} issues"
    )


if __name__ == "__main__":
    main()
