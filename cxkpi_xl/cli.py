"""The ``cxkpi`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


LITE_MAIN = '''"""cxkpi-xl in xlwings Lite: the CX_ Excel functions (=CX_NPS(Surveys[score]), ...).

Paste this into main.py in the xlwings Lite editor, and requirements.txt into its
requirements.txt tab. The functions appear in Excel once the packages are installed.
"""

from cxkpi_xl.udfs import *  # noqa: F403 - registers every CX_ function
'''

SERVER_MODULE = '''"""cxkpi-xl's Excel functions for xlwings Server.

Put this file into your xlwings Server project's app/custom_functions/ folder and add
`from .cxkpi_functions import *` to app/custom_functions/__init__.py; pip install
cxkpi-xl into the server's environment. Excel shows the functions under the add-in's
namespace (XLWINGS.CX_NPS unless you configure another one).
"""

from cxkpi_xl.udfs import *  # noqa: F403 - re-exports every CX_ function
'''


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--requirement",
    default=f"cxkpi-xl=={__version__}",
    show_default=True,
    help="How xlwings Lite installs cxkpi-xl: a PyPI pin or the URL of a wheel you host.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def lite(directory: Path, requirement: str, force: bool) -> None:
    """Write main.py and requirements.txt for the xlwings Lite editor."""
    import xlwings

    _write_new(directory / "main.py", LITE_MAIN, force)
    _write_new(
        directory / "requirements.txt", f"xlwings=={xlwings.__version__}\n{requirement}\n", force
    )
    click.echo(
        "Next: in Excel open the xlwings Lite add-in, paste main.py into its editor and "
        "requirements.txt into its requirements.txt tab."
    )


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def server(directory: Path, force: bool) -> None:
    """Write the custom-functions module that re-exports the CX_ functions for xlwings
    Server."""
    _write_new(directory / "cxkpi_functions.py", SERVER_MODULE, force)
    click.echo(
        "Next: copy it to app/custom_functions/ of your xlwings Server project and add "
        "`from .cxkpi_functions import *` to app/custom_functions/__init__.py."
    )


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
