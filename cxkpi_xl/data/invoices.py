"""MRR from invoice lines, by the rules ChartMogul documents: the validated ``Invoices``
and ``FX`` tables become the customer-by-month ``MRR`` table the engine already reads,
so nothing past ``data/`` knows where MRR came from.

The rules (also in the README and in the MRR row of the Definitions sheet):

- a customer's MRR in a month is the sum, over its ``subscription`` and ``credit`` lines
  whose service period covers the month's last day (``service_start <= last day <
  service_end``: the end is exclusive, so Jan 1 to Feb 1 covers January only), of
  ``(amount - tax) / interval_months``;
- ``interval_months`` is the plan's billing interval; blank, it is the service period in
  whole months (days / 30.44, rounded, at least 1);
- a prorated line (Yes in ``prorated``) is scaled up to its full interval by ChartMogul's
  prorate factor, full interval / prorated period in days, the full interval being the
  ``interval_months`` that end on the line's ``service_end``: so a mid-month upgrade
  billed as a credit for the old plan's unused days and a charge for the new plan's gives
  the new plan's MRR from that month on;
- ``one_time`` lines never count; ``usage`` lines count only when ``include_usage`` is Yes;
- each line is converted to the report currency at the FX rate of its ``service_start``
  month (the latest earlier month's rate when that month has none) and that rate is held
  for the whole service period: an exchange-rate move never changes MRR within a line's
  period; with ``fx_rate = subscription`` every line of a subscription takes the rate of
  the subscription's first month, so that a rate move never changes MRR at all (a
  constant-currency view); a line in a currency without a rate is left out with a data
  issue;
- a month's total is rounded to cents; a negative total counts as 0 with a data issue;
- churn follows from the lines: a customer's MRR is 0 in the first month its last
  service period does not cover (the month the last period ends, when it ends on the 1st
  or mid-month); a later line is a reactivation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .issues import Issue
from .schema import INVOICE_KINDS, Settings

DAYS_PER_MONTH = 365.25 / 12
COUNTED = ("subscription", "credit")


def _month_index(dates: pd.Series) -> np.ndarray:
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy(np.int64)


def _full_interval_days(end: pd.Series, months: np.ndarray) -> np.ndarray:
    """Days in the ``months`` (whole) ending on ``end``: from the same day ``months``
    earlier (or that month's last day) to ``end``; fractional intervals use 30.44 days."""
    whole = months == np.round(months)
    k = np.where(whole, np.round(months), 0).astype(np.int64)
    em = _month_index(end) - k
    year, month = em // 12, em % 12 + 1
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    last_day = first.dt.days_in_month.to_numpy()
    day = np.minimum(end.dt.day.to_numpy(), last_day)
    begin = first + pd.to_timedelta(day - 1, unit="D")
    calendar = (end.to_numpy() - begin.to_numpy()) / np.timedelta64(1, "D")
    return np.where(whole, calendar, months * DAYS_PER_MONTH)


def report_currency(settings: Settings) -> str:
    return str(settings["report_currency"] or settings["currency"] or "").strip().upper()


def _rates(currency: np.ndarray, month: np.ndarray, fx: pd.DataFrame, report: str) -> np.ndarray:
    """The rate of each (currency, month): 1 for the report currency, else the FX rate of
    that month or the latest earlier one; NaN when there is none."""
    rate = np.full(len(currency), np.nan)
    rate[currency == report] = 1.0
    other = np.flatnonzero(currency != report)
    if not len(other) or fx.empty:
        return rate
    table = pd.DataFrame(
        {
            "currency": fx["currency"].astype(str).str.strip().str.upper().to_numpy(),
            "m": _month_index(fx["month"]),
            "rate": fx["rate"].to_numpy(float),
        }
    ).dropna()
    table = table.drop_duplicates(["currency", "m"], keep="last").sort_values("m")
    lines = pd.DataFrame({"currency": currency[other], "m": month[other], "i": other})
    found = pd.merge_asof(
        lines.sort_values("m"), table, on="m", by="currency", direction="backward"
    )
    rate[found["i"].to_numpy()] = found["rate"].to_numpy(float)
    return rate


def _first_month(
    invoices: pd.DataFrame, currency: np.ndarray, ms: np.ndarray, use: np.ndarray
) -> np.ndarray:
    """For each used line, the first service_start month of its subscription (by
    ``subscription_id``; without one, by customer and currency)."""
    sub = invoices["subscription_id"].to_numpy(object)[use]
    customer = invoices["customer_id"].to_numpy(object)[use]
    key = [
        f"s\x00{s}" if s is not None and s == s else f"c\x00{c}\x00{cur}"
        for s, c, cur in zip(sub, customer, currency[use], strict=True)
    ]
    return pd.Series(ms[use]).groupby(key).transform("min").to_numpy(np.int64)


def mrr_from_invoices(
    invoices: pd.DataFrame,
    fx: pd.DataFrame,
    settings: Settings,
    sheet: str = "Invoices",
) -> tuple[pd.DataFrame, list[Issue]]:
    """The MRR table (``customer_id``, ``month``, ``mrr``) that validated invoice lines
    give, and the data issues found on the way.

    >>> lines = pd.DataFrame({
    ...     "customer_id": ["a", "a"], "kind": ["subscription", "one_time"],
    ...     "service_start": pd.to_datetime(["2026-01-01", "2026-01-01"]),
    ...     "service_end": pd.to_datetime(["2027-01-01", "2026-01-01"]),
    ...     "amount": [1200.0, 300.0], "tax": [None, None], "currency": [None, None],
    ...     "interval_months": [12.0, None], "prorated": [False, False], "_row": [2, 3]})
    >>> mrr, issues = mrr_from_invoices(lines, pd.DataFrame(), Settings())
    >>> mrr["mrr"].tolist() == [100.0] * 12, str(mrr["month"].iat[11].date())
    (True, '2026-12-01')
    """
    issues: list[Issue] = []
    rows = invoices["_row"].to_numpy() if "_row" in invoices else np.arange(len(invoices)) + 2
    kind = invoices["kind"].astype(object).where(invoices["kind"].notna(), "")
    kind = kind.astype(str).str.strip().str.lower().str.replace("-", "_").str.replace(" ", "_")
    kind_arr = kind.to_numpy(object)
    bad_kind = ~np.isin(kind_arr, INVOICE_KINDS)
    for i in np.flatnonzero(bad_kind):
        issues.append(
            Issue(
                sheet,
                int(rows[i]),
                "kind",
                invoices["kind"].iat[i],
                f"is not one of {', '.join(INVOICE_KINDS)}",
                "left the line out of MRR",
            )
        )
    counted_kinds = COUNTED + (("usage",) if settings["include_usage"] == "Yes" else ())
    use = np.isin(kind_arr, counted_kinds)
    start = invoices["service_start"].dt.normalize()
    end = invoices["service_end"].dt.normalize()
    backwards = use & (end <= start).to_numpy()
    for i in np.flatnonzero(backwards):
        issues.append(
            Issue(
                sheet,
                int(rows[i]),
                "service_end",
                invoices["service_end"].iat[i],
                "is not after service_start",
                "left the line out of MRR",
            )
        )
    use &= ~backwards
    report = report_currency(settings)
    currency = invoices["currency"].astype(object).where(invoices["currency"].notna(), "")
    currency = currency.astype(str).str.strip().str.upper().to_numpy(object)
    currency = np.where(currency == "", report, currency)
    ms = _month_index(start.where(use, pd.Timestamp("2000-01-01")))
    rate_month = ms
    if settings["fx_rate"] == "subscription" and use.any():
        rate_month = ms.copy()
        rate_month[use] = _first_month(invoices, currency, ms, use)
    rate = _rates(currency, rate_month, fx, report)
    no_rate = use & np.isnan(rate)
    for i in np.flatnonzero(no_rate):
        issues.append(
            Issue(
                sheet,
                int(rows[i]),
                "currency",
                currency[i],
                f"has no FX rate to {report} for {ms[i] // 12:04d}-{ms[i] % 12 + 1:02d} "
                "or any month before it",
                "left the line out of MRR",
            )
        )
    use &= ~no_rate
    idx = np.flatnonzero(use)
    if not len(idx):
        return _empty(), issues
    s, e = start.iloc[idx].reset_index(drop=True), end.iloc[idx].reset_index(drop=True)
    days = ((e - s).dt.days).to_numpy(float)
    interval = invoices["interval_months"].to_numpy(float)[idx]
    interval = np.where(
        np.isnan(interval) | (interval <= 0),
        np.maximum(np.round(days / DAYS_PER_MONTH), 1),
        interval,
    )
    tax = np.nan_to_num(invoices["tax"].to_numpy(float)[idx])
    net = invoices["amount"].to_numpy(float)[idx] - tax
    monthly = net / interval * rate[idx]
    prorated = invoices["prorated"].fillna(False).to_numpy(bool)[idx]
    if prorated.any():
        p = np.flatnonzero(prorated)
        full = _full_interval_days(e.iloc[p].reset_index(drop=True), interval[p])
        monthly[p] *= full / days[p]
    first, stop = _month_index(s), _month_index(e)
    span = np.maximum(stop - first, 0)
    total = int(span.sum())
    line = np.repeat(np.arange(len(idx)), span)
    offset = np.arange(total) - np.repeat(np.cumsum(span) - span, span)
    month = first[line] + offset
    customer_codes, customers = pd.factorize(invoices["customer_id"].to_numpy(object)[idx])
    lo = int(month.min()) if total else 0
    width = int(month.max()) - lo + 1 if total else 1
    key = customer_codes[line].astype(np.int64) * width + (month - lo)
    cells, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=monthly[line], minlength=len(cells))
    sums = np.round(sums, 2) + 0.0  # + 0.0 turns -0.0 into 0.0
    cust, mon = cells // width, cells % width + lo
    for c, m, v in zip(cust[sums < 0], mon[sums < 0], sums[sums < 0], strict=True):
        issues.append(
            Issue(
                sheet,
                None,
                "amount",
                float(v),
                f"the lines of customer {customers[c]} give a negative MRR for "
                f"{m // 12:04d}-{m % 12 + 1:02d}",
                "counted 0",
            )
        )
    keep = sums > 0
    months = pd.to_datetime(
        pd.DataFrame({"year": mon[keep] // 12, "month": mon[keep] % 12 + 1, "day": 1})
    )
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(np.asarray(customers, dtype=object)[cust[keep]], dtype=object),
            "month": months,
            "mrr": sums[keep],
        }
    )
    frame["_row"] = 0
    return frame, issues


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype=object),
            "month": pd.Series([], dtype="datetime64[ns]"),
            "mrr": pd.Series([], dtype=float),
            "_row": pd.Series([], dtype=np.int64),
        }
    )


def use_invoices(settings: Settings, mrr: pd.DataFrame, invoices: pd.DataFrame) -> bool:
    """Whether MRR comes from Invoices: the ``mrr_source`` setting, where ``auto`` means
    the MRR table when it has rows, else Invoices when they have rows."""
    source = settings["mrr_source"]
    if source == "auto":
        return mrr.empty and not invoices.empty
    return source == "invoices"


__all__ = ["mrr_from_invoices", "report_currency", "use_invoices"]
