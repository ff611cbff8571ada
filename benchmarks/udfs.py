"""Time CX_NPS through xlwings' own Office.js dispatch on a 1,000,000 x 1 range.

This is the path xlwings Lite and Server run for ``=CX_NPS(Surveys[score])``:
``custom_functions_call`` with the range as the 2-D list Office.js sends. The floor is
``np.asarray`` of the same 2-D list. Target: ratio <= 2.

    python benchmarks/udfs.py [--n 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

os.environ.setdefault("XLWINGS_ON_SERVER", "true")  # before xlwings is first imported
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import numpy as np
import xlwings as xw
from xlwings.server import custom_functions_call

import cxkpi_xl.udfs as udfs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    column = [[float(v)] for v in rng.integers(0, 11, args.n)]
    with_blanks = [[None] if i % 10 == 0 else row for i, row in enumerate(column)]

    def dispatch(rows: list[list[float | None]]) -> object:
        payload = {
            "func_name": "CX_NPS",
            "args": [rows],
            "version": xw.__version__,
            "client": "Office.js",
            "runtime": "1.4",
        }
        return asyncio.run(custom_functions_call(payload, udfs))

    def best(fn, *a):  # type: ignore[no-untyped-def]
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn(*a)
            times.append(time.perf_counter() - t0)
        return min(times)

    print(f"CX_NPS through custom_functions_call, {args.n:,} x 1, best of {args.repeat}")
    print(f"{'input':<22}{'time s':>9}{'floor s':>9}{'ratio':>7}")
    for label, rows in (("numbers", column), ("numbers, 10% blank", with_blanks)):
        t = best(dispatch, rows)
        floor = best(np.asarray, rows)
        print(f"{label:<22}{t:>9.3f}{floor:>9.3f}{t / floor:>7.2f}")
    print("result:", dispatch(column))


if __name__ == "__main__":
    main()
