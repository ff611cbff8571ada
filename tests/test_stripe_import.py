"""``cxkpi import stripe``: a Stripe invoice list built here from the object shapes in
Stripe's API reference (Invoice; Invoice Line Item with ``period``, ``amount``,
``discount_amounts``, ``tax_amounts`` / ``taxes``, ``price.recurring``, ``proration``,
and the newer ``parent``), imported into a template's Invoices Table and refreshed end
to end; and ChartMogul's CSV shape."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from cxkpi_xl.cli import main
from cxkpi_xl.data.chartmogul import read_chartmogul
from cxkpi_xl.data.reader import read
from cxkpi_xl.data.stripe import minor_unit, read_stripe
from cxkpi_xl.refresh import refresh
from cxkpi_xl.workbook.template import build

from .lo import recalculate


def _ts(day: str) -> int:
    return calendar.timegm(dt.date.fromisoformat(day).timetuple())


def _price(pid: str, interval: str | None, count: int = 1, usage: str = "licensed"):
    recurring = (
        None
        if interval is None
        else {"interval": interval, "interval_count": count, "usage_type": usage}
    )
    return {"id": pid, "object": "price", "recurring": recurring, "nickname": None}


def _line(lid: str, amount: int, start: str, end: str, price=None, **kw: Any):
    line = {
        "id": lid,
        "object": "line_item",
        "amount": amount,
        "currency": kw.pop("currency", "usd"),
        "discount_amounts": kw.pop("discount_amounts", []),
        "tax_amounts": kw.pop("tax_amounts", []),
        "period": {"start": _ts(start), "end": _ts(end)},
        "proration": kw.pop("proration", False),
        "quantity": 1,
        "subscription": kw.pop("subscription", None),
        "type": "subscription" if price and price["recurring"] else "invoiceitem",
        "price": price,
    }
    line.update(kw)
    return line


def _invoice(iid: str, customer: str, day: str, lines: list, status: str = "paid", cur="usd"):
    return {
        "id": iid,
        "object": "invoice",
        "customer": customer,
        "created": _ts(day),
        "currency": cur,
        "status": status,
        "lines": {"object": "list", "data": lines, "has_more": False},
    }


MONTHLY = _price("price_pro", "month")
ANNUAL_JPY = _price("price_jp", "year")
METERED = _price("price_calls", "month", usage="metered")
SEATS = _price("price_seats", "month")


def _invoices() -> list[dict[str, Any]]:
    out = []
    for m in (1, 2, 3):
        start, end = f"2026-{m:02d}-01", f"2026-{m + 1:02d}-01"
        # cus_A: 50.00 a month, 20 % forever coupon (10.00 off), 20 % exclusive tax on
        # the 40.00 (8.00): our amount 50 - 10 + 8 = 48, tax 8, MRR 48 - 8 = 40.
        lines = [
            _line(
                f"il_a{m}", 5000, start, end, MONTHLY, subscription="sub_a",
                discount_amounts=[{"amount": 1000, "discount": "di_forever"}],
                tax_amounts=[{"amount": 800, "inclusive": False, "tax_rate": "txr_20"}],
            )
        ]  # fmt: skip
        if m == 1:  # a 100.00 setup fee: one_time, no MRR
            lines.append(_line("il_fee", 10000, start, start, None))
        out.append(_invoice(f"in_a{m}", "cus_A", start, lines))
        # cus_D: 20.00 of seats plus 30.00 of metered calls: MRR 20 (usage left out).
        out.append(
            _invoice(
                f"in_d{m}", "cus_D", start,
                [_line(f"il_d{m}", 2000, start, end, SEATS),
                 _line(f"il_u{m}", 3000, start, end, METERED)],
            )
        )  # fmt: skip
        # cus_E in the newer API shape: no price object, the line's parent is a
        # subscription item; 30.00 with 3.00 exclusive tax in ``taxes``: MRR 30.
        new_shape = _line(f"il_e{m}", 3000, start, end, None, subscription=None)
        del new_shape["price"], new_shape["tax_amounts"], new_shape["proration"]
        new_shape["parent"] = {
            "type": "subscription_item_details",
            "subscription_item_details": {"proration": False, "subscription": "sub_e"},
        }
        new_shape["taxes"] = [{"amount": 300, "tax_behavior": "exclusive"}]
        out.append(_invoice(f"in_e{m}", "cus_E", start, [new_shape]))
    # cus_B: a JPY annual plan of 120,000 yen with 10,909 yen of inclusive tax, from Jan
    # 2026: (120000 - 10909) / 12 = 9090.92 yen a month, at 0.01 USD per yen = 90.91.
    out.append(
        _invoice(
            "in_b", "cus_B", "2026-01-01",
            [_line("il_b", 120000, "2026-01-01", "2027-01-01", ANNUAL_JPY, currency="jpy",
                   tax_amounts=[{"amount": 10909, "inclusive": True}])],
            cur="jpy",
        )
    )  # fmt: skip
    # cus_C: a void invoice and a draft: neither counts.
    out.append(
        _invoice("in_c", "cus_C", "2026-01-01",
                 [_line("il_c", 9900, "2026-01-01", "2026-02-01", MONTHLY)], "void")
    )  # fmt: skip
    out.append(
        _invoice("in_c2", "cus_C", "2026-02-01",
                 [_line("il_c2", 9900, "2026-02-01", "2026-03-01", MONTHLY)], "draft")
    )  # fmt: skip
    return out


def test_minor_units_from_stripes_currency_list():
    # Stripe: amounts in the smallest unit; zero-decimal JPY, KRW; three-decimal KWD.
    assert [minor_unit(c) for c in ("usd", "eur", "jpy", "krw", "kwd", "bhd")] == [
        100, 100, 1, 1, 1000, 1000,
    ]  # fmt: skip


def test_read_stripe_maps_the_documented_fields(tmp_path):
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps({"object": "list", "data": _invoices(), "has_more": False}))
    found = read_stripe(path)
    assert dict(found.skipped) == {"void": 1, "draft": 1}
    rows = found.rows.set_index("line_id")
    assert rows.loc["il_a1", ["amount", "tax", "kind", "interval_months"]].tolist() == [
        48.0, 8.0, "subscription", 1.0,
    ]  # fmt: skip
    assert rows.loc["il_fee", "kind"] == "one_time"
    assert rows.loc["il_u1", "kind"] == "usage"
    assert rows.loc["il_e1", ["amount", "tax", "kind"]].tolist() == [33.0, 3.0, "subscription"]
    assert rows.loc["il_e1", "subscription_id"] == "sub_e"
    assert rows.loc["il_b", ["amount", "tax", "currency", "interval_months"]].tolist() == [
        120000.0, 10909.0, "JPY", 12.0,
    ]  # fmt: skip
    assert rows.loc["il_b", "service_start"] == pd.Timestamp("2026-01-01")
    assert rows.loc["il_b", "service_end"] == pd.Timestamp("2027-01-01")
    assert "il_c" not in rows.index and "il_c2" not in rows.index


def test_one_invoice_per_line_and_a_proration_credit(tmp_path):
    # JSON Lines; an upgrade on Jan 15 (credit -27.42 for 17/31 of the old 50.00 and
    # 54.84 for the new 100.00, both prorations): January's MRR is the new plan's 100.
    invoices = [
        _invoice("in_1", "cus_U", "2026-01-01",
                 [_line("il_1", 5000, "2026-01-01", "2026-02-01", MONTHLY)]),
        _invoice("in_2", "cus_U", "2026-01-15",
                 [_line("il_2", -2742, "2026-01-15", "2026-02-01", MONTHLY, proration=True),
                  _line("il_3", 5484, "2026-01-15", "2026-02-01", MONTHLY, proration=True)]),
        _invoice("in_3", "cus_U", "2026-02-01",
                 [_line("il_4", 10000, "2026-02-01", "2026-03-01", MONTHLY)]),
    ]  # fmt: skip
    path = tmp_path / "invoices.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in invoices))
    rows = read_stripe(path).rows
    assert rows["kind"].tolist() == ["subscription", "credit", "subscription", "subscription"]
    data = read({"Invoices": rows})
    assert data.tables["MRR"]["mrr"].tolist() == [100.0, 100.0]


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def test_import_into_a_workbook_and_refresh_end_to_end(tmp_path):
    fx = pd.DataFrame({"month": ["2026-01-01"], "currency": ["JPY"], "rate": [0.01]})
    book = build(tmp_path / "book.xlsx", {"FX": fx})
    before = _parts(book)
    path = tmp_path / "stripe.json"
    path.write_text(json.dumps({"object": "list", "data": _invoices(), "has_more": False}))
    result = CliRunner().invoke(main, ["import", "stripe", str(path), "--into", str(book)])
    assert result.exit_code == 0, result.output
    assert "14 lines" in result.output and "1 draft, 1 void" in result.output
    after = _parts(book)
    changed = {n for n in after if after[n] != before.get(n)}
    assert list(after) == list(before)  # same parts, same order
    wb = openpyxl.load_workbook(book)
    sheet_part = next(n for n in changed if n.startswith("xl/worksheets/"))
    assert changed == {sheet_part, next(n for n in changed if n.startswith("xl/tables/"))}
    ws = wb["Invoices"]
    assert ws.tables["Invoices"].ref == "A1:O15"
    assert ws["A2"].value == "in_a1" and ws["F2"].value == dt.datetime(2026, 1, 1)
    data = read(book)
    assert len(data.tables["Invoices"]) == 14
    done = refresh(book)
    kpis = done.report.kpis
    jan = done.report.periods.index("2026-01")
    # January: A 40 + B 90.91 + D 20 + E 30 = 180.91; March the same; April: only B's
    # annual plan runs on (90.91): A, D and E churn (90 in all).
    assert kpis["mrr"][jan] == pytest.approx(180.91)
    mar = done.report.periods.index("2026-03")
    assert kpis["mrr"][mar] == pytest.approx(180.91)
    assert done.report.periods[-1] == "2026-12"
    apr = done.report.periods.index("2026-04")
    assert kpis["mrr_churn"][apr] == pytest.approx(90.0)
    # LibreOffice opens the written workbook and sees the rows.
    (converted,) = recalculate([book], tmp_path / "lo")
    lo = openpyxl.load_workbook(converted)
    assert lo["Invoices"]["A15"].value == "in_b"


def test_import_to_csv_folder_then_read(tmp_path):
    path = tmp_path / "stripe.json"
    path.write_text(json.dumps(_invoices()))  # a bare JSON array of invoices
    result = CliRunner().invoke(main, ["import", "stripe", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "Invoices.csv")
    assert len(frame) == 14 and frame["prorated"].eq("No").all()


def test_import_refuses_a_book_without_an_invoices_table(tmp_path):
    book = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(book)
    before = book.read_bytes()
    path = tmp_path / "stripe.json"
    path.write_text(json.dumps(_invoices()[:1]))
    result = CliRunner().invoke(main, ["import", "stripe", str(path), "--into", str(book)])
    assert result.exit_code != 0 and "no Excel Table named Invoices" in result.output
    assert book.read_bytes() == before


def test_not_stripe_json_is_one_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"object": "customer", "id": "cus_1"}))
    result = CliRunner().invoke(main, ["import", "stripe", str(path), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "other than Stripe invoices" in result.output


def test_chartmogul_csv_shape(tmp_path):
    # ChartMogul's example: a subscription line of 5000 cents (after a 1000 discount,
    # with 900 of tax) for Nov 10 - Dec 1 2022, prorated, and a 2500 one_time setup fee.
    # The prorated line's interval is the period rounded (21 days: 1 month), full
    # interval Nov 1 - Dec 1 = 30 days over 21: MRR (50 - 9) * 30/21 = 58.57.
    invoices = tmp_path / "invoices.csv"
    invoices.write_text(
        "external_id,customer_external_id,date,currency\n"
        "inv_0001,cus_0001,2022-11-10 00:00:00,USD\n"
    )
    lines = tmp_path / "line_items.csv"
    lines.write_text(
        "invoice_external_id,external_id,type,subscription_external_id,plan_uuid,"
        "service_period_start,service_period_end,amount_in_cents,quantity,"
        "discount_amount_in_cents,tax_amount_in_cents,prorated\n"
        "inv_0001,li_1,subscription,sub_0001,pl_1,2022-11-10 00:00:00,"
        "2022-12-01 00:00:00,5000,1,1000,900,true\n"
        "inv_0001,li_2,one_time,,,,,2500,1,500,450,false\n"
    )
    frame = read_chartmogul(lines, invoices)
    assert frame["kind"].tolist() == ["subscription", "one_time"]
    assert frame["amount"].tolist() == [50.0, 25.0] and frame["tax"].tolist() == [9.0, 4.5]
    data = read({"Invoices": frame})
    mrr = data.tables["MRR"]
    assert mrr["mrr"].tolist() == [pytest.approx(58.57)]
    result = CliRunner().invoke(
        main,
        ["import", "chartmogul", str(lines), "--invoices", str(invoices), "--out",
         str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "out" / "Invoices.csv")) == 2
