"""Stripe invoices (the JSON of the invoice list API with lines expanded) as rows of the
``Invoices`` input table.

Input: a list object (``{"object": "list", "data": [invoice, ...]}``), a JSON array of
invoices, one invoice object, or one invoice object per line (JSON Lines).

Field mapping (Stripe's API reference for the Invoice and Invoice Line Item objects):

- ``invoice_id`` = invoice ``id``; ``customer_id`` = invoice ``customer`` (an id, or the
  ``id`` of an expanded customer); ``invoice_date`` = invoice ``created`` (Unix seconds,
  UTC); only invoices whose ``status`` is ``paid`` or ``open`` are taken: ``draft`` is
  not final, ``void`` was cancelled and ``uncollectible`` was written off, so none of
  them is revenue (each is counted in the summary);
- each line of ``lines.data``: ``line_id`` = ``id``; ``service_start`` / ``service_end``
  = ``period.start`` / ``period.end`` (Unix seconds, UTC, end exclusive);
- ``amount`` = line ``amount`` (before discounts; tax included only when inclusive) less
  every ``discount_amounts[].amount``, plus the exclusive taxes; ``tax`` = every tax of
  the line, from ``tax_amounts[]`` (``amount``, ``inclusive``) or, in newer API
  versions, ``taxes[]`` (``amount``, ``tax_behavior``); all in the currency's minor unit:
  cents, none for zero-decimal currencies such as JPY, thousandths for BHD, JOD, KWD,
  OMR and TND;
- ``currency`` = ``currency`` (lower case in Stripe, upper case here);
- ``kind``: ``usage`` when the price's (or the older ``plan``'s) ``usage_type`` is
  ``metered``; else, for a recurring price, ``credit`` when the amount is negative and
  ``subscription`` otherwise; ``one_time`` for a line without a recurring price (in
  newer API versions, whose lines carry only the price's id, a line whose ``parent`` is
  a subscription item counts as recurring);
- ``interval_months`` from ``price.recurring.interval`` and ``interval_count`` (or the
  older ``plan.interval`` and ``plan.interval_count``): month = 1, year = 12, week = 7
  days, day = 1 day (in months of 30.44 days); blank when not given;
- ``prorated`` = ``proration`` (or ``parent.*_details.proration``);
  ``subscription_id`` = ``subscription`` (or ``parent.subscription_item_details.
  subscription``); ``plan`` = the price's ``nickname`` or id; ``quantity`` = ``quantity``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .invoices import DAYS_PER_MONTH

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
COUNTED_STATUSES = ("paid", "open")
COLUMNS = (
    "invoice_id", "customer_id", "invoice_date", "line_id", "kind", "service_start",
    "service_end", "amount", "tax", "currency", "interval_months", "prorated",
    "subscription_id", "plan", "quantity",
)  # fmt: skip


class StripeError(ValueError):
    """The file is not Stripe invoice JSON; the message is one line for the user."""


@dataclass
class StripeImport:
    """The Invoices rows and what was left out."""

    rows: pd.DataFrame
    invoices: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Invoices left out, by status."""
    truncated: list[str] = field(default_factory=list)
    """Invoices whose ``lines`` has more lines than the file holds (``has_more``)."""


def minor_unit(currency: str) -> int:
    """How many minor units make one unit of ``currency`` in Stripe's API amounts.

    >>> minor_unit("usd"), minor_unit("JPY"), minor_unit("kwd")
    (100, 1, 1000)
    """
    c = currency.lower()
    return 1 if c in ZERO_DECIMAL else 1000 if c in THREE_DECIMAL else 100


def _load(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(text)
        docs = doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StripeError(f"{path.name} line {n} is not JSON: {e.msg}") from None
    invoices: list[dict[str, Any]] = []
    for d in docs:
        if isinstance(d, dict) and d.get("object") == "list":
            invoices.extend(x for x in d.get("data", []) if isinstance(x, dict))
        elif isinstance(d, dict) and d.get("object") == "invoice":
            invoices.append(d)
        else:
            raise StripeError(
                f"{path.name} holds something other than Stripe invoices (an object "
                f"{str(d.get('object') if isinstance(d, dict) else type(d).__name__)!r})"
            )
    return invoices


def _date(seconds: Any) -> pd.Timestamp | None:
    if seconds is None:
        return None
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").tz_localize(None).normalize()


def _recurring(line: dict[str, Any]) -> dict[str, Any] | None:
    price = line.get("price")
    if isinstance(price, dict) and isinstance(price.get("recurring"), dict):
        return price["recurring"]
    plan = line.get("plan")
    if isinstance(plan, dict) and plan.get("interval"):
        return plan
    return None


def _parent(line: dict[str, Any]) -> dict[str, Any]:
    parent = line.get("parent")
    if not isinstance(parent, dict):
        return {}
    details = parent.get(str(parent.get("type")))
    return details if isinstance(details, dict) else {}


def _interval_months(recurring: dict[str, Any] | None) -> float | None:
    if not recurring or not recurring.get("interval"):
        return None
    count = float(recurring.get("interval_count") or 1)
    unit = recurring["interval"]
    per = {"month": 1.0, "year": 12.0, "week": 7 / DAYS_PER_MONTH, "day": 1 / DAYS_PER_MONTH}
    return count * per[unit] if unit in per else None


def _line_row(invoice: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    currency = str(line.get("currency") or invoice.get("currency") or "")
    unit = minor_unit(currency)
    discounts = sum(int(d.get("amount") or 0) for d in line.get("discount_amounts") or [])
    taxes = [
        (int(t.get("amount") or 0), bool(t.get("inclusive"))) for t in line.get("tax_amounts") or []
    ] + [
        (int(t.get("amount") or 0), t.get("tax_behavior") == "inclusive")
        for t in line.get("taxes") or []
    ]
    tax = sum(a for a, _ in taxes)
    exclusive = sum(a for a, inclusive in taxes if not inclusive)
    amount = int(line.get("amount") or 0) - discounts + exclusive
    recurring = _recurring(line)
    parent = _parent(line)
    usage_type = (recurring or {}).get("usage_type")
    is_recurring = recurring is not None or (
        (line.get("parent") or {}).get("type") == "subscription_item_details"
    )
    if usage_type == "metered":
        kind = "usage"
    elif is_recurring:
        kind = "credit" if amount < 0 else "subscription"
    else:
        kind = "one_time"
    price = line.get("price") if isinstance(line.get("price"), dict) else {}
    plan = price.get("nickname") or price.get("id") or (line.get("plan") or {}).get("id")
    period = line.get("period") or {}
    customer = invoice.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    proration = line.get("proration")
    if proration is None:
        proration = parent.get("proration", False)
    return {
        "invoice_id": invoice.get("id"),
        "customer_id": customer,
        "invoice_date": _date(invoice.get("created")),
        "line_id": line.get("id"),
        "kind": kind,
        "service_start": _date(period.get("start")),
        "service_end": _date(period.get("end")),
        "amount": amount / unit,
        "tax": tax / unit,
        "currency": currency.upper() or None,
        "interval_months": _interval_months(recurring),
        "prorated": bool(proration),
        "subscription_id": line.get("subscription") or parent.get("subscription"),
        "plan": plan,
        "quantity": line.get("quantity"),
    }


def read_stripe(path: str | Path) -> StripeImport:
    """The Invoices rows of a Stripe invoice JSON export (see the module's mapping)."""
    path = Path(path)
    if not path.is_file():
        raise StripeError(f"{path}: no such file")
    result = StripeImport(pd.DataFrame(columns=list(COLUMNS)))
    rows = []
    for invoice in _load(path):
        result.invoices += 1
        status = str(invoice.get("status"))
        if status not in COUNTED_STATUSES:
            result.skipped[status] += 1
            continue
        lines = invoice.get("lines") or {}
        if lines.get("has_more"):
            result.truncated.append(str(invoice.get("id")))
        for line in lines.get("data") or []:
            rows.append(_line_row(invoice, line))
    if rows:
        result.rows = pd.DataFrame(rows, columns=list(COLUMNS))
    return result


__all__ = ["StripeError", "StripeImport", "minor_unit", "read_stripe"]
