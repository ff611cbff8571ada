"""``cxkpi import stripe|chartmogul``: billing exports into the ``Invoices`` input table,
written into a workbook's Invoices Table (at package level, atomically, the rest of the
workbook byte for byte as it was) or as ``Invoices.csv`` in a folder of CSV inputs."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from .data.schema import TABLES_BY_NAME


def write_invoices(frame: pd.DataFrame, into: Path | None, out: Path | None) -> str:
    """Write the Invoices rows into a workbook or a CSV folder; returns where, in words."""
    if (into is None) == (out is None):
        raise click.UsageError("give exactly one of --into BOOK.xlsx and --out DIR")
    columns = [c.name for c in TABLES_BY_NAME["Invoices"].columns]
    frame = frame.reindex(columns=columns)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        csv = frame.copy()
        for c in ("invoice_date", "service_start", "service_end"):
            csv[c] = pd.to_datetime(csv[c]).dt.strftime("%Y-%m-%d")
        csv["prorated"] = csv["prorated"].map({True: "Yes", False: "No"})
        target = out / "Invoices.csv"
        csv.to_csv(target, index=False)
        return str(target)
    from .report.package import PackageError
    from .report.table_rows import write_table_rows

    assert into is not None
    if not into.is_file():
        raise click.ClickException(f"{into}: no such workbook")
    try:
        write_table_rows(into, "Invoices", frame)
    except (PackageError, OSError) as e:
        raise click.ClickException(str(e)) from None
    return f"the Invoices Table of {into.name}"


_INTO = click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rows into this workbook's Invoices Table (replacing its rows).",
)
_OUT = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write Invoices.csv into this folder instead.",
)


@click.group("import")
def import_group() -> None:
    """Turn a billing export into the Invoices input table (MRR is then computed from
    it by the rules in the README)."""


@import_group.command("stripe")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_INTO
@_OUT
def stripe(file: Path, into: Path | None, out: Path | None) -> None:
    """Stripe invoices JSON (the invoice list API with lines expanded: a list object, or
    one invoice object per line). Only paid and open invoices count."""
    from .data.stripe import StripeError, read_stripe

    try:
        found = read_stripe(file)
    except (StripeError, OSError) as e:
        raise click.ClickException(str(e)) from None
    where = write_invoices(found.rows, into, out)
    skipped = ", ".join(f"{n} {s}" for s, n in sorted(found.skipped.items()))
    click.echo(
        f"Imported {len(found.rows)} lines of {found.invoices - sum(found.skipped.values())} "
        f"invoices into {where}"
        + (f"; left out {skipped} (only paid and open invoices count)" if skipped else "")
    )
    if found.truncated:
        click.echo(
            f"warning: {len(found.truncated)} invoices have more lines than the file holds "
            f"(has_more), e.g. {found.truncated[0]}: export with lines expanded in full",
            err=True,
        )


@import_group.command("chartmogul")
@click.argument("line_items", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--invoices",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ChartMogul's invoices CSV, when the line items file has no invoice columns.",
)
@_INTO
@_OUT
def chartmogul(
    line_items: Path, invoices: Path | None, into: Path | None, out: Path | None
) -> None:
    """ChartMogul's invoice import CSV (line items, with or beside the invoices)."""
    from .data.chartmogul import ChartMogulError, read_chartmogul

    try:
        frame = read_chartmogul(line_items, invoices)
    except (ChartMogulError, OSError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    where = write_invoices(frame, into, out)
    click.echo(f"Imported {len(frame)} lines into {where}")


__all__ = ["import_group", "write_invoices"]
