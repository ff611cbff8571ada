"""Table-valued KPIs from three aligned columns of a customer-by-month MRR table: the MRR
movements per month and the cohort retention matrix.

They run the period engine on the ranges given (Excel sends them as 2-D lists), so the
numbers are the report's numbers. Any bad row raises ValueError naming its row within
the ranges (1 is the first row).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

MOVEMENT_COLUMNS = (
    "mrr",
    "mrr_new",
    "mrr_reactivation",
    "mrr_expansion",
    "mrr_contraction",
    "mrr_churn",
    "net_new_mrr",
)


def _column(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    arr = np.array(x, dtype=object)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 2 and 1 not in arr.shape:
        raise ValueError(
            f"{name} must be one column or one row, not {arr.shape[0]} x {arr.shape[1]}"
        )
    return arr.ravel()


def _mrr_data(customer_ids: Any, months: Any, mrr: Any, granularity: str = "month"):  # type: ignore[no-untyped-def]
    from ..data.reader import read

    ids, m, values = (
        _column(v, n) for v, n in ((customer_ids, "customer_ids"), (months, "months"), (mrr, "mrr"))
    )
    if not len(ids) == len(m) == len(values):
        raise ValueError(
            f"customer_ids, months and mrr must have the same number of cells "
            f"({len(ids)}, {len(m)} and {len(values)})"
        )
    frame = pd.DataFrame({"customer_id": ids, "month": m, "mrr": values})
    data = read({"MRR": frame}, {"granularity": granularity})
    if data.issues:
        first = data.issues[0]
        more = f" (and {len(data.issues) - 1} more)" if len(data.issues) > 1 else ""
        raise ValueError(
            f"row {first.row - 1} of the ranges: {first.column} {first.value!r} "
            f"{first.problem}{more}"
        )
    return data


def mrr_movements(customer_ids: Any, months: Any, mrr: Any) -> pd.DataFrame:
    """MRR and its five movements for each month, from a customer-by-month MRR table.

    Formula: per customer between one month and the next, ChartMogul's new,
    reactivation, expansion, contraction and churn; net new = new + reactivation +
    expansion - contraction - churn, and MRR(end) = MRR(start) + net new. The first month
    has no previous month: its movements are blank.

    Examples
    --------
    >>> mrr_movements(["a", "a", "b"], ["2026-01-01", "2026-02-01", "2026-02-01"],
    ...               [100, 120, 50]).loc["2026-02"].tolist()
    [170.0, 50.0, 0.0, 20.0, 0.0, 0.0, 70.0]
    """
    from .assemble import compute

    report = compute(_mrr_data(customer_ids, months, mrr), breakdowns=False)
    frame = pd.DataFrame({c: report.kpis[c] for c in MOVEMENT_COLUMNS}, index=report.periods)
    frame.index.name = "month"
    return frame


def cohort_retention(
    customer_ids: Any, months: Any, mrr: Any, measure: Literal["revenue", "logos"] = "revenue"
) -> pd.DataFrame:
    """Cohort retention: first-paying month x months since then.

    Formula: revenue retained = cohort's MRR k months later / its MRR in its first month;
    logos retained = cohort's customers paying k months later / cohort size.

    Examples
    --------
    >>> cohort_retention(["a", "a", "b"], ["2026-01-01", "2026-02-01", "2026-01-01"],
    ...                  [100, 120, 50]).loc["2026-01"].tolist()
    [1.0, 0.8]
    """
    from .assemble import compute

    if measure not in ("revenue", "logos"):
        raise ValueError(f'measure must be "revenue" or "logos", not {measure!r}')
    report = compute(_mrr_data(customer_ids, months, mrr))
    frame = report.breakdowns["cohort_revenue" if measure == "revenue" else "cohort_logos"]
    frame.index.name = "cohort"
    return frame
