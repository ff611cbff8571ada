"""Time reading the Customers, MRR and Surveys tables of a Parquet source (no Usage).

    python benchmarks/source_read.py [--scale 1|0.1] [--table MRR]

Links the chosen tables of ``benchmarks/.cache/sources-SCALE/`` into a temporary folder
and reads it with ``cxkpi_xl.data.reader.read``: prints seconds, the peak resident memory
of the process, rows kept and the Data Issues count. Figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from cxkpi_xl.data.reader import read

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="1")
    parser.add_argument("--table", action="append", help="MRR, Surveys or Customers")
    args = parser.parse_args()
    folder = HERE / ".cache" / f"sources-{args.scale}"
    tables = args.table or ["Customers", "MRR", "Surveys"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in tables:
            (Path(tmp) / f"{name}.parquet").symlink_to((folder / f"{name}.parquet").resolve())
        start = time.perf_counter()
        data = read(tmp)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = ", ".join(f"{n} {len(data.tables[n]):,}" for n in tables)
    print(f"scale {args.scale}: {'+'.join(tables)} read in {seconds:.1f} s, peak {peak:,.0f} MiB")
    print(f"  rows kept: {rows}; data issues: {len(data.issues)}")


if __name__ == "__main__":
    main()
