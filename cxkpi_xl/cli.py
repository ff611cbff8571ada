"""The ``cxkpi`` command line."""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .catalogue import CATALOGUE, excel_signature, markdown_table


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxkpi")
def main() -> None:
    """Customer-experience and customer-success KPIs for Excel."""


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
    help="table for reading, markdown for the README, json for tools.",
)
def functions(fmt: str) -> None:
    """List every KPI: its id, unit, formula and Excel function with its arguments."""
    if fmt == "markdown":
        click.echo(markdown_table(), nl=False)
        return
    if fmt == "json":
        rows = [
            {
                "id": k.id,
                "title": k.title,
                "unit": k.unit,
                "family": k.family,
                "formula": k.formula,
                "source": k.source,
                "excel_name": k.excel_name,
                "arguments": k.arguments,
                "description": k.description,
            }
            for k in CATALOGUE
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table()


def _print_table() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cxkpi-xl KPIs", show_lines=False, expand=False)
    for heading in ("id", "unit", "Excel function", "formula"):
        table.add_column(heading, overflow="fold")
    for k in CATALOGUE:
        excel = excel_signature(k) if k.excel_name else "(from the input tables)"
        table.add_row(k.id, k.unit, excel, k.formula)
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
