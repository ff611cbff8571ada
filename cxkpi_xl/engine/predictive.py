"""The predictive models on the report's data: predicted CLV by segment and the
P(alive) distribution (BG/NBD with Gamma-Gamma on the Orders), and projected
retention of the oldest MRR cohort (sBG)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from ..data.issues import Issue
from ..data.periods import label, month_end
from ..data.reader import Dataset
from .axis import _Axis
from .subscriptions import _Base

P_ALIVE_BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _predictive(
    data: Dataset, base: _Base, axis: _Axis, issues: list[Issue]
) -> dict[str, pd.DataFrame]:
    """Predicted CLV by segment and the P(alive) distribution from the Orders (BG/NBD
    with Gamma-Gamma), and projected retention of the oldest MRR cohort (sBG). A model
    that cannot be fitted on these data is reported as a data issue, not an error."""
    from ..models import ModelError, cltv_predicted, sbg_retention

    out: dict[str, pd.DataFrame] = {}
    orders = data.tables["Orders"]
    if len(orders):
        end = (
            axis.periods[axis.reported.stop - 1][1]
            if axis.periods[axis.reported]
            else axis.size - 1
        )
        end_date = pd.Timestamp(month_end(axis.base + end))
        upto = orders[orders["order_date"] <= end_date]
        try:
            table = cltv_predicted(
                upto["customer_id"], upto["order_date"], upto["amount"], 12, 0.01, end_date
            )
        except (ModelError, ValueError) as e:
            issues.append(
                Issue(
                    "Orders",
                    None,
                    "",
                    None,
                    f"predictive CLV not computed: {e}",
                    "left it out of the report",
                )
            )
        else:
            cust = data.tables["Customers"]
            segment = dict(
                zip(cust["customer_id"], cust["segment"].fillna("(no segment)"), strict=True)
            )
            # the ids are the float codes of _encode_ids, which the model gives back as text
            table["segment"] = [segment.get(float(c), "(not in Customers)") for c in table.index]
            by_segment = table.groupby("segment").agg(
                customers=("predicted_clv", "size"),
                predicted_clv_mean=("predicted_clv", "mean"),
                predicted_clv_total=("predicted_clv", "sum"),
                p_alive_mean=("p_alive", "mean"),
            )
            out["predicted_clv_by_segment"] = by_segment
            names = [f"{lo:.0%}-{hi:.0%}" for lo, hi in pairwise(P_ALIVE_BANDS)]
            bands = pd.cut(table["p_alive"], P_ALIVE_BANDS, labels=names, include_lowest=True)
            dist = table.groupby(bands, observed=False)["predicted_clv"].agg(["size", "sum"])
            dist.columns = ["customers", "predicted_clv_total"]
            dist.index.name = "p_alive"
            out["p_alive_distribution"] = dist
    if base.has_mrr_data:
        m = base.mrr
        paying = m > 0
        first = np.where(paying.any(axis=1), paying.argmax(axis=1), -1)
        start = int(first[first >= 1].min()) if (first >= 1).any() else -1
        if start >= 1 and axis.size - start >= 4:
            # sBG is contractual: a customer counts until the first month without MRR.
            members = first == start
            never_left = np.logical_and.accumulate(paying[members, start:], axis=1)
            survival = never_left.sum(axis=0).astype(int).tolist()
            try:
                projected = sbg_retention(survival, periods=12)
            except (ModelError, ValueError) as e:
                issues.append(
                    Issue(
                        "MRR",
                        None,
                        "",
                        None,
                        f"projected retention not computed: {e}",
                        "left it out of the report",
                    )
                )
            else:
                projected.index.name = f"months since {label(axis.base + start, 'month')}"
                out["projected_retention"] = projected
    return out
