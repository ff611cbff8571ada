"""ChartMogul's invoice import shape as rows of the ``Invoices`` input table, so that any
billing system that exports for ChartMogul feeds cxkpi too.

ChartMogul imports invoices (``external_id``, ``customer_external_id``, ``date``,
``currency``) and their line items (``invoice_external_id``, ``external_id``, ``type``
``subscription`` or ``one_time``, ``subscription_external_id``, ``plan_uuid`` or a plan
id, ``service_period_start``, ``service_period_end``, ``amount_in_cents``, ``quantity``,
``discount_amount_in_cents``, ``tax_amount_in_cents``, ``prorated``), as two CSV files
or one file with the invoice columns on each line item. ``amount_in_cents`` is
ChartMogul's final amount of the line after discounts, tax included, which is what
``amount`` means here, so it maps directly (in the currency's minor unit: cents; none
for JPY and the other zero-decimal currencies). A negative ``subscription`` line is a
``credit``. Headers match ignoring case, spaces and underscores; a missing invoice for a
line is an error naming it. ChartMogul takes the billing interval from its Plans; a
plan's interval is not in these files, so ``interval_months`` is left blank (the
service period in whole months).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .stripe import COLUMNS, minor_unit

LINE_NAMES = {
    "invoice_id": ("invoice_external_id", "invoice_id"),
    "line_id": ("external_id", "line_item_external_id", "line_id"),
    "type": ("type", "line_item_type"),
    "subscription_id": ("subscription_external_id", "subscription_id"),
    "plan": ("plan_external_id", "plan_uuid", "plan_id", "plan"),
    "service_start": ("service_period_start",),
    "service_end": ("service_period_end",),
    "amount": ("amount_in_cents",),
    "quantity": ("quantity",),
    "tax": ("tax_amount_in_cents",),
    "prorated": ("prorated",),
    "customer_id": ("customer_external_id",),
    "invoice_date": ("date", "invoice_date"),
    "currency": ("currency",),
}
INVOICE_NAMES = {
    "invoice_id": ("external_id", "invoice_external_id"),
    "customer_id": ("customer_external_id",),
    "invoice_date": ("date", "invoice_date"),
    "currency": ("currency",),
}


class ChartMogulError(ValueError):
    """The files are not in ChartMogul's invoice shape; one line for the user."""


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def _pick(frame: pd.DataFrame, names: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    keys = {_key(c): c for c in frame.columns}
    out = {}
    for ours, theirs in names.items():
        found = next((keys[_key(t)] for t in theirs if _key(t) in keys), None)
        if found is not None:
            out[ours] = frame[found]
    return pd.DataFrame(out, index=frame.index)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ChartMogulError(f"{path}: no such file")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def read_chartmogul(line_items: str | Path, invoices: str | Path | None = None) -> pd.DataFrame:
    """The Invoices rows of ChartMogul invoice line items (and, when they are in a file
    of their own, invoices)."""
    lines = _pick(_read(Path(line_items)), LINE_NAMES)
    for needed in ("invoice_id", "service_start", "service_end", "amount"):
        if needed not in lines:
            wanted = LINE_NAMES[needed][0]
            raise ChartMogulError(f"{Path(line_items).name} has no column {wanted}")
    if invoices is not None:
        head = _pick(_read(Path(invoices)), INVOICE_NAMES).drop_duplicates("invoice_id")
        if "customer_id" not in head:
            raise ChartMogulError(f"{Path(invoices).name} has no column customer_external_id")
        lines = lines.drop(columns=[c for c in head.columns if c != "invoice_id"], errors="ignore")
        lines = lines.merge(head, on="invoice_id", how="left")
        orphan = lines["customer_id"].isna()
        if orphan.any():
            raise ChartMogulError(
                f"line items of invoice {lines['invoice_id'][orphan].iat[0]} have no invoice "
                f"in {Path(invoices).name}"
            )
    if "customer_id" not in lines:
        raise ChartMogulError(
            f"{Path(line_items).name} has no customer_external_id: give the invoices file too"
        )
    currency = lines.get("currency", pd.Series("", index=lines.index)).str.strip().str.upper()
    unit = currency.map(minor_unit).to_numpy(float)
    amount = pd.to_numeric(lines["amount"], errors="coerce").to_numpy(float) / unit
    tax = pd.to_numeric(lines.get("tax"), errors="coerce")
    tax = tax.to_numpy(float) / unit if tax is not None else np.full(len(lines), np.nan)
    kind = lines.get("type", pd.Series("subscription", index=lines.index)).str.strip().str.lower()
    kind = kind.where(~((kind == "subscription") & (amount < 0)), "credit")
    prorated = lines.get("prorated", pd.Series("", index=lines.index)).str.strip().str.lower()
    out = pd.DataFrame(
        {
            "invoice_id": lines["invoice_id"],
            "customer_id": lines["customer_id"],
            "invoice_date": pd.to_datetime(lines.get("invoice_date"), errors="coerce"),
            "line_id": lines.get("line_id"),
            "kind": kind,
            "service_start": pd.to_datetime(lines["service_start"], errors="coerce"),
            "service_end": pd.to_datetime(lines["service_end"], errors="coerce"),
            "amount": amount,
            "tax": tax,
            "currency": currency.where(currency != "", None),
            "interval_months": np.nan,
            "prorated": prorated.isin(("true", "1", "yes")),
            "subscription_id": lines.get("subscription_id"),
            "plan": lines.get("plan"),
            "quantity": pd.to_numeric(lines.get("quantity"), errors="coerce"),
        },
        columns=list(COLUMNS),
    )
    for c in ("invoice_date", "service_start", "service_end"):
        out[c] = out[c].dt.normalize()
    return out.reset_index(drop=True)


__all__ = ["ChartMogulError", "read_chartmogul"]
