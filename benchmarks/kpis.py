"""Time the survey KPIs and customer_churn_rate on 1,000,000 values.

Each KPI gets the values as a numpy array and as a 1,000,000 x 1 Python 2-D list (what
xlwings delivers for a column range). The floor is ``np.asarray`` of the same input: the
least any function must do to read it. Prints each time (best of a few runs) and its ratio
to the floor. Target: every survey KPI within 2x of the floor.

For a numpy input ``np.asarray`` returns the array itself (microseconds), so that ratio
only says the KPI's own arithmetic and checks cost a few milliseconds; the line also
gives the time of the bare formula in numpy, without any input checks, for scale.

    python benchmarks/kpis.py [--n 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import cxkpi_xl as cx


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(42)

    nps_scores = rng.integers(0, 11, args.n).astype(float)
    csat_scores = rng.integers(1, 6, args.n).astype(float)
    starts = rng.integers(100, 5_000, args.n).astype(float)
    lost = np.floor(starts * rng.uniform(0, 0.1, args.n))

    def bare_nps(a: np.ndarray) -> float:
        return (np.count_nonzero(a >= 9) - np.count_nonzero(a <= 6)) / a.size * 100

    def bare_csat(a: np.ndarray) -> float:
        return np.count_nonzero(a >= 4) / a.size

    def bare_churn(s: np.ndarray, lost: np.ndarray) -> np.ndarray:
        return lost / s

    cases: list[tuple[str, Callable[..., Any], Callable[..., Any], list[np.ndarray]]] = [
        ("nps", cx.nps, bare_nps, [nps_scores]),
        ("csat", cx.csat, bare_csat, [csat_scores]),
        ("customer_churn_rate", cx.customer_churn_rate, bare_churn, [starts, lost]),
    ]
    print(f"{args.n:,} values, best of {args.repeat}; floor = np.asarray of the same input")
    print(f"{'kpi':<22}{'input':<10}{'time s':>9}{'floor s':>10}{'ratio':>9}{'bare s':>9}")
    for name, fn, bare, arrays in cases:
        for label, inputs in (
            ("numpy", arrays),
            ("2-D list", [[[v] for v in a.tolist()] for a in arrays]),
        ):
            t = best_of(lambda fn=fn, inputs=inputs: fn(*inputs), args.repeat)
            floor = best_of(lambda inputs=inputs: [np.asarray(x) for x in inputs], args.repeat)
            if label == "numpy":
                bare_t = f"{best_of(lambda bare=bare, a=arrays: bare(*a), args.repeat):>9.4f}"
            else:
                bare_t = f"{'':>9}"
            print(f"{name:<22}{label:<10}{t:>9.4f}{floor:>10.6f}{t / floor:>9.2f}{bare_t}")


if __name__ == "__main__":
    main()
