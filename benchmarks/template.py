"""Template generation time, empty and with each sample size, and LibreOffice's full
recalculation time of the medium one.

    python benchmarks/template.py [--sizes tiny small medium large]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cxkpi_xl.sample import SIZES, generate
from cxkpi_xl.workbook.template import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["tiny", "small", "medium", "large"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        build(tmp_path / "empty.xlsx")
        print(
            f"{'empty':<8}{'':>12}{time.perf_counter() - t0:>9.1f} s  {(tmp_path / 'empty.xlsx').stat().st_size / 2**20:6.1f} MiB"
        )
        for size in args.sizes:
            tables = generate(size)
            rows = sum(len(v) for v in tables.values())
            t0 = time.perf_counter()
            path = build(tmp_path / f"{size}.xlsx", tables)
            print(
                f"{size:<8}{rows:>10,} rows{time.perf_counter() - t0:>7.1f} s  {path.stat().st_size / 2**20:6.1f} MiB"
            )
        if "medium" in args.sizes:
            import sys

            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.lo import recalculate

            t0 = time.perf_counter()
            recalculate([tmp_path / "medium.xlsx"], tmp_path / "out")
            print(
                f"LibreOffice full recalculation of medium ({SIZES['medium'].customers:,} customers): {time.perf_counter() - t0:.1f} s"
            )


if __name__ == "__main__":
    main()
