"""Seeded, realistic sample data for every input table: the demo, the template's
``--sample-data``, the tests and the benchmarks all draw from here.

A subscription business is simulated month by month: customers sign up with seasonality
across three segments and their owners, pay MRR that expands, contracts, churns and
sometimes comes back; each customer has a latent satisfaction that drives both their NPS
answers and their churn, so survey answers correlate with later churn. Orders, tickets,
product usage, health scores, the funnel and costs come along.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import SETTINGS, TABLES


@dataclass(frozen=True)
class Size:
    customers: int
    months: int
    surveys: int
    orders: int
    tickets: int
    usage: int


SIZES: dict[str, Size] = {
    "tiny": Size(40, 12, 150, 120, 60, 600),
    "small": Size(400, 18, 2_500, 1_500, 800, 10_000),
    "medium": Size(3_000, 24, 25_000, 15_000, 8_000, 100_000),
    "large": Size(40_000, 24, 500_000, 300_000, 100_000, 1_000_000),
}

SEGMENTS = ("SMB", "Mid-market", "Enterprise")
SEGMENT_SHARE = (0.6, 0.3, 0.1)
SEGMENT_MRR = (120.0, 900.0, 6_000.0)
OWNERS = {
    "SMB": ("Ana Lima", "Ben Okafor", "Chloe Martin"),
    "Mid-market": ("Dev Patel", "Eva Novak"),
    "Enterprise": ("Farah Haddad", "Gus Svensson"),
}
CHURN_REASONS = (
    "Price",
    "Missing feature",
    "Poor support",
    "Switched to competitor",
    "Budget cuts",
    "Company closed",
)
FEATURES = ("dashboard", "reports", "integrations", "alerts", "api", "mobile")
FEATURE_SHARE = (0.3, 0.25, 0.15, 0.12, 0.1, 0.08)
PRODUCTS = {
    "primary": ("Core licence", "Pro licence"),
    "secondary": ("Training", "Premium support", "Extra seats"),
}
COMMENTS = {
    "promoter": ("Great support team and easy to use", "The reports save us hours every week",
                 "Reliable product, great value", "Onboarding was fast and easy"),
    "passive": ("Good product but the price went up", "Works fine, reports could be faster",
                "Decent, missing a few integrations"),
    "detractor": ("Support is slow to answer", "Too expensive for what we use",
                  "The integrations keep breaking", "Hard to use and slow reports"),
}  # fmt: skip
HEALTH_WEIGHTS = {"usage": 0.4, "support": 0.2, "nps": 0.3, "payment": 0.1}


def generate(
    size: str = "small", *, seed: int = 7, start: str = "2025-01"
) -> dict[str, pd.DataFrame]:
    """Every input table as a DataFrame (plus ``HealthWeights``), reproducible by seed."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    spec = SIZES[size]
    rng = np.random.default_rng(seed)
    T = spec.months
    month0 = pd.Timestamp(start + "-01")
    month_starts = pd.date_range(month0, periods=T, freq="MS")
    n = spec.customers

    # Signups: a third at the start (the installed base), the rest spread with seasonality.
    weights = 1 + 0.35 * np.sin(np.arange(T) / 12 * 2 * np.pi + 1.0)
    signup_month = np.where(
        rng.random(n) < 0.33, 0, rng.choice(T, size=n, p=weights / weights.sum())
    )
    signup_day = rng.integers(0, 28, n)
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    satisfaction = rng.normal(0.0, 1.0, n)  # latent: drives NPS and churn
    base_mrr = np.round(np.array(SEGMENT_MRR)[segment] * rng.lognormal(0, 0.45, n), 2)

    mrr = np.zeros((n, T))
    ever = np.zeros(n, dtype=bool)
    churn_hazard = 0.025 * np.exp(-0.7 * satisfaction) * np.array([1.4, 0.8, 0.5])[segment]
    gap = np.zeros(n, dtype=bool)
    for t in range(T):
        signs = signup_month == t
        current = mrr[:, t - 1] if t else np.zeros(n)
        active_before = current > 0
        churns = active_before & (rng.random(n) < churn_hazard)
        returns = ~active_before & ever & (rng.random(n) < 0.02)
        expand = active_before & ~churns & (rng.random(n) < 0.05)
        contract = active_before & ~churns & ~expand & (rng.random(n) < 0.03)
        nxt = current.copy()
        nxt[churns] = 0
        nxt[expand] = np.round(nxt[expand] * rng.uniform(1.1, 1.5, expand.sum()), 2)
        nxt[contract] = np.round(nxt[contract] * rng.uniform(0.7, 0.9, contract.sum()), 2)
        nxt[returns] = base_mrr[returns]
        nxt[signs] = base_mrr[signs]
        gap |= returns
        mrr[:, t] = nxt
        ever |= nxt > 0

    ids = np.array([f"C{i + 1:05d}" for i in range(n)], dtype=object)
    paid = mrr > 0
    last_paid = np.where(paid.any(axis=1), T - 1 - paid[:, ::-1].argmax(axis=1), -1)
    churned = (last_paid >= 0) & (last_paid < T - 1) & ~gap
    signup_date = month_starts[signup_month] + pd.to_timedelta(signup_day, unit="D")
    churn_date = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    churn_idx = np.flatnonzero(churned)
    churn_date.iloc[churn_idx] = month_starts[
        np.minimum(last_paid[churn_idx] + 1, T - 1)
    ] + pd.to_timedelta(rng.integers(0, 5, len(churn_idx)), unit="D")
    churn_date[churned & (last_paid + 1 >= T)] = pd.NaT
    reason = np.where(churned, rng.choice(CHURN_REASONS, size=n), None)
    ttv = rng.gamma(2.0, 9.0, n).round()
    first_value = pd.Series(signup_date + pd.to_timedelta(ttv, unit="D"))
    first_value[rng.random(n) < 0.12] = pd.NaT
    referred = (rng.random(n) < 0.15) & (np.arange(n) > 5)
    referrer = np.where(
        referred, ids[np.maximum(0, (rng.random(n) * np.arange(n)).astype(int))], None
    )
    referrer = np.where(referrer == ids, None, referrer)
    owner = np.array([rng.choice(OWNERS[SEGMENTS[s]]) for s in segment], dtype=object)
    customers = pd.DataFrame({
        "customer_id": ids,
        "customer_name": [f"Customer {i + 1}" for i in range(n)],
        "segment": np.array(SEGMENTS, dtype=object)[segment],
        "owner": owner,
        "signup_date": signup_date,
        "churn_date": churn_date.to_numpy(),
        "churn_reason": reason,
        "first_value_date": first_value.to_numpy(),
        "referred_by": referrer,
        "reference_willing": np.where(satisfaction + rng.normal(0, 0.5, n) > 0.9, "Yes", "No"),
    })  # fmt: skip

    rows = np.argwhere(paid)
    mrr_table = pd.DataFrame({
        "customer_id": ids[rows[:, 0]],
        "month": month_starts[rows[:, 1]],
        "mrr": mrr[rows[:, 0], rows[:, 1]],
    })  # fmt: skip

    def active_pairs(k: int, rate: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k (customer, month) pairs drawn from the paying customer-months, in proportion
        to each customer's ``rate`` when given."""
        if rate is None:
            pick = rng.integers(0, len(rows), k)
        else:
            w = rate[rows[:, 0]]
            pick = rng.choice(len(rows), size=k, p=w / w.sum())
        return rows[pick, 0], rows[pick, 1]

    def day_in(months: np.ndarray) -> pd.DatetimeIndex:
        return month_starts[months] + pd.to_timedelta(rng.integers(0, 28, len(months)), unit="D")

    # Surveys: NPS follows satisfaction; CSAT, CES and stars follow it more loosely.
    c, m = active_pairs(spec.surveys)
    kind = rng.choice(
        np.array(["NPS", "CSAT", "CES", "STAR"], dtype=object),
        size=spec.surveys,
        p=[0.4, 0.3, 0.2, 0.1],
    )
    s = satisfaction[c] + rng.normal(0, 0.8, spec.surveys)
    score = np.select(
        [kind == "NPS", kind == "CSAT", kind == "CES"],
        [
            np.clip(np.round(7.2 + 1.9 * s), 0, 10),
            np.clip(np.round(3.9 + 0.9 * s), 1, 5),
            np.clip(np.round(5.2 + 1.2 * s), 1, 7),
        ],
        np.clip(np.round(3.9 + 0.9 * s), 1, 5),
    )
    category = np.where(score >= 9, "promoter", np.where(score <= 6, "detractor", "passive"))
    comment = np.array(
        [rng.choice(COMMENTS[cat]) if rng.random() < 0.3 else None for cat in category],
        dtype=object,
    )
    comment[kind != "NPS"] = None
    surveys = pd.DataFrame({
        "response_id": [f"R{i + 1:07d}" for i in range(spec.surveys)],
        "customer_id": ids[c],
        "response_date": day_in(m),
        "survey": kind,
        "score": score,
        "comment": comment,
    }).sort_values("response_date", kind="stable").reset_index(drop=True)  # fmt: skip

    # Orders: licences (primary) and add-ons (secondary); buyers differ in how often they
    # buy (a gamma-distributed rate, as the BG/NBD model assumes).
    c, m = active_pairs(spec.orders, rng.gamma(0.7, 1.0, n))
    cat = np.where(rng.random(spec.orders) < 0.35, "secondary", "primary")
    product = np.array([rng.choice(PRODUCTS[x]) for x in cat], dtype=object)
    # Order values: licences and add-ons, a little higher for larger segments.
    segment_factor = np.array([1.0, 1.6, 2.5])[segment[c]]
    list_price = np.where(cat == "primary", 900.0, 180.0) * segment_factor
    amount = np.round(list_price * rng.lognormal(0, 0.35, spec.orders), 2)
    orders = pd.DataFrame({
        "order_id": [f"O{i + 1:07d}" for i in range(spec.orders)],
        "customer_id": ids[c],
        "order_date": day_in(m),
        "amount": amount,
        "product": product,
        "category": cat,
        "quantity": rng.integers(1, 4, spec.orders),
    }).sort_values("order_date", kind="stable").reset_index(drop=True)  # fmt: skip

    # Tickets: happier customers need fewer contacts.
    c, m = active_pairs(spec.tickets)
    opened = day_in(m)
    contacts = 1 + rng.poisson(np.clip(0.6 - 0.3 * satisfaction[c], 0.05, None))
    resolved = pd.Series(opened + pd.to_timedelta(rng.integers(0, 6, spec.tickets), unit="D"))
    resolved[rng.random(spec.tickets) < 0.08] = pd.NaT
    tickets = pd.DataFrame({
        "ticket_id": [f"T{i + 1:07d}" for i in range(spec.tickets)],
        "customer_id": ids[c],
        "opened_date": opened,
        "resolved_date": resolved.to_numpy(),
        "contacts": contacts,
        "agent": rng.choice(np.array(["Ivy", "Jon", "Kai", "Lea"], dtype=object), spec.tickets),
    }).sort_values("opened_date", kind="stable").reset_index(drop=True)  # fmt: skip

    # Usage: a few users per account, active on some days.
    c, m = active_pairs(spec.usage)
    users = np.array([f"U{x:06d}" for x in range(n * 6)], dtype=object)
    usage = pd.DataFrame({
        "activity_date": day_in(m),
        "user_id": users[c * 6 + rng.integers(0, 6, spec.usage)],
        "customer_id": ids[c],
        "feature": rng.choice(np.array(FEATURES, dtype=object), spec.usage, p=FEATURE_SHARE),
    }).sort_values("activity_date", kind="stable").reset_index(drop=True)  # fmt: skip

    # Health: four measures for about a third of the paying customer-months.
    pick = rows[rng.random(len(rows)) < 0.33]
    hc, hm = np.repeat(pick[:, 0], 4), np.repeat(pick[:, 1], 4)
    measure = np.tile(np.array(list(HEALTH_WEIGHTS), dtype=object), len(pick))
    hscore = np.clip(np.round(62 + 18 * satisfaction[hc] + rng.normal(0, 12, len(hc))), 0, 100)
    health = pd.DataFrame(
        {"customer_id": ids[hc], "month": month_starts[hm], "measure": measure, "score": hscore}
    )
    weights_table = pd.DataFrame(
        {"measure": list(HEALTH_WEIGHTS), "weight": list(HEALTH_WEIGHTS.values())}
    )

    new_per_month = np.bincount(signup_month, minlength=T)
    visitors = np.round(new_per_month * rng.uniform(35, 55, T) + 200).astype(int)
    funnel = pd.DataFrame(
        {
            "month": month_starts,
            "visitors": visitors,
            "conversions": new_per_month + rng.integers(0, 5, T),
        }
    )
    active_counts = paid.sum(axis=0)
    costs = pd.DataFrame({
        "month": month_starts,
        "acquisition_cost": np.round(new_per_month * rng.uniform(600, 900, T), 2),
        "retention_cost": np.round(active_counts * rng.uniform(8, 14, T), 2),
    })  # fmt: skip
    return {
        "Customers": customers, "MRR": mrr_table, "Orders": orders, "Surveys": surveys,
        "Tickets": tickets, "Usage": usage, "Health": health, "Funnel": funnel, "Costs": costs,
        "HealthWeights": weights_table,
    }  # fmt: skip


CSV_FILES = (*(f"{t.name}.csv" for t in TABLES), "Settings.csv")
"""The files :func:`write_csv` writes."""


def write_csv(tables: dict[str, pd.DataFrame], folder: str | Path) -> Path:
    """The tables as ``Customers.csv``, ``MRR.csv``, ... with dates as YYYY-MM-DD."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    pd.DataFrame(
        {"name": [s.name for s in SETTINGS], "value": [s.default for s in SETTINGS]}
    ).to_csv(folder / "Settings.csv", index=False)
    return folder


def write_workbook(tables: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """The tables as a plain workbook: one sheet per table holding an Excel Table of the
    same name (HealthWeights on a Settings sheet), written in openpyxl's streaming mode so
    that millions of rows fit in memory. The template generator writes the styled one."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.filters import AutoFilter
    from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

    path = Path(path)
    wb = Workbook(write_only=True)
    for name, frame in tables.items():
        ws = wb.create_sheet("Settings" if name == "HealthWeights" else name)
        columns = [str(c) for c in frame.columns]
        ref = f"A1:{get_column_letter(len(columns))}{max(len(frame), 1) + 1}"
        # The sheet's size, known before its first row: openpyxl then writes the sheet's
        # <dimension> as Excel does (readers size the sheet from it; without it openpyxl's
        # read-only mode calls the sheet "unsized" and cxkpi-xl scans it first).
        ws.calculate_dimension = lambda ref=ref: ref
        ws.append(columns)
        values = frame.astype(object).where(frame.notna(), None)
        for row in values.itertuples(index=False, name=None):
            ws.append([_cell_value(ws, v) for v in row])
        table = Table(displayName=name, ref=ref)
        table.tableColumns = [TableColumn(id=i + 1, name=c) for i, c in enumerate(columns)]
        table.autoFilter = AutoFilter(ref=ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
        with warnings.catch_warnings():  # openpyxl warns in write-only mode even with columns
            warnings.filterwarnings("ignore", "In write-only mode", UserWarning)
            ws.add_table(table)
    wb.save(path)
    return path


def _cell_value(ws: object, v: object) -> object:
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, str) and is_formula_like(v):
        return literal_text_cell(ws, v)
    return v


FORMULA_STARTS = ("=", "+", "-", "@")
ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def is_formula_like(text: str) -> bool:
    """Text that openpyxl (or Excel) would take for a formula or an error value."""
    return text.startswith(FORMULA_STARTS) or text in ERROR_CODES


def literal_text_cell(ws: object, text: str) -> object:
    """A write-only cell that holds ``text`` as a string, never as a formula."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell
