"""1,000,000 invoice lines to MRR: time and peak memory.

Makes (in memory, seeded) 1,000,000 Invoices lines: 40,000 customers on monthly plans
over 24 months (some annual, some quarterly), in USD, EUR and GBP with an FX table,
with prorated upgrades (a credit and a charge), one-time fees and metered usage; then,
each in a fresh process:

- ``mrr``: :func:`cxkpi_xl.data.invoices.mrr_from_invoices` on the typed lines;
- ``read``: :func:`cxkpi_xl.data.reader.read` of the raw lines as DataFrames (every
  column normalised and validated from the schema) and the MRR from them.

Targets on the 2-core machine: under 10 s and under 2 GB peak RSS (``ru_maxrss``).

    python benchmarks/invoices.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

LINES = 1_000_000


def make(n: int = LINES, seed: int = 1):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    customers = 40_000
    cust = rng.integers(0, customers, n)
    start_month = rng.integers(0, 24, n)
    kind = rng.choice(["subscription", "credit", "one_time", "usage"], n, p=[0.9, 0.03, 0.03, 0.04])
    months = rng.choice([1, 3, 12], n, p=[0.9, 0.05, 0.05])
    day = np.where(kind == "credit", 15, 1)
    start = pd.to_datetime("2024-01-01") + pd.to_timedelta(start_month * 30.44, unit="D")
    start = start.to_period("M").to_timestamp() + pd.to_timedelta(day - 1, unit="D")
    end = (start.to_period("M") + months).to_timestamp()
    amount = rng.integers(10, 500, n).astype(float) * months
    amount = np.where(kind == "credit", -amount / 2, amount)
    currency = rng.choice(["", "USD", "EUR", "GBP"], n, p=[0.6, 0.2, 0.15, 0.05])
    lines = pd.DataFrame(
        {
            "invoice_id": [f"in_{i}" for i in range(n)],
            "customer_id": [f"cus_{c}" for c in cust],
            "invoice_date": start,
            "line_id": "l1",
            "kind": kind,
            "service_start": start,
            "service_end": end,
            "amount": amount,
            "tax": np.round(amount * 0.1, 2),
            "currency": currency,
            "interval_months": months.astype(float),
            "prorated": np.where(kind == "credit", "Yes", "No"),
            "subscription_id": [f"sub_{c}" for c in cust],
            "plan": "pro",
            "quantity": 1.0,
        }
    )
    fx_months = pd.date_range("2023-12-01", "2026-12-01", freq="MS")
    fx = pd.DataFrame(
        {
            "month": np.tile(fx_months, 2),
            "currency": np.repeat(["EUR", "GBP"], len(fx_months)),
            "rate": np.concatenate([1.1 + 0.001 * np.arange(len(fx_months))] * 2),
        }
    )
    return lines, fx


def _run(stage: str) -> None:
    from cxkpi_xl.data.reader import read

    lines, fx = make()
    if stage == "mrr":
        data = read({"FX": fx, "Settings": {"mrr_source": "mrr_table"}})
        typed = lines.assign(
            prorated=lines["prorated"].eq("Yes"), currency=lines["currency"].replace("", None)
        )
        from cxkpi_xl.data.invoices import mrr_from_invoices

        t0 = time.perf_counter()
        mrr, issues = mrr_from_invoices(typed, data.tables["FX"], data.settings)
        seconds = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        data = read({"Invoices": lines, "FX": fx})
        seconds = time.perf_counter() - t0
        mrr, issues = data.tables["MRR"], data.issues
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"stage": stage, "seconds": seconds, "peak_mb": peak,
                      "mrr_rows": len(mrr), "issues": len(issues)}))  # fmt: skip


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--stage":
        _run(sys.argv[2])
        return
    for stage in ("mrr", "read"):
        out = subprocess.run(
            [sys.executable, __file__, "--stage", stage], capture_output=True, text=True
        )
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            raise SystemExit(out.returncode)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['stage']:>5}: {LINES:,} lines -> {r['mrr_rows']:,} MRR rows in "
            f"{r['seconds']:.2f} s, peak RSS {r['peak_mb']:.0f} MB ({r['issues']} issues)"
        )


if __name__ == "__main__":
    main()
