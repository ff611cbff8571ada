"""The ``cxkpi`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__


class _Group(click.Group):
    """The CLI's one error boundary: an exception no command turned into a message
    (a reader library's own error, a panic in its Rust code, MemoryError, ...) ends the
    command with one line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        given = [*getattr(ctx, "_protected_args", []), *ctx.args]
        files = [a for a in given[1:] if not a.startswith("-")]
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as e:
            from .refresh import failure_reason

            source = Path(files[0]) if files else Path("the input")
            raise click.ClickException(failure_reason(e, source)) from None

    # ``cxkpi import`` is loaded when it is run or listed: it imports pandas, which the
    # check that nothing changed since the last refresh must not wait for.
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "import"})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "import" and "import" not in self.commands:
            from .billing_import import import_group

            self.add_command(import_group, "import")
        return super().get_command(ctx, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from .catalogue import CATALOGUE, markdown_table

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
from cxkpi_xl.excel import cx_refresh, cx_refresh_report  # noqa: F401 - the Refresh KPIs buttons
'''

SERVER_MODULE = '''"""cxkpi-xl's Excel functions for xlwings Server.

Put this file into your xlwings Server project's app/custom_functions/ folder and add
`from .cxkpi_functions import *` to app/custom_functions/__init__.py; pip install
cxkpi-xl into the server's environment. Excel shows the functions under the add-in's
namespace (XLWINGS.CX_NPS unless you configure another one).
"""

from cxkpi_xl.udfs import *  # noqa: F403 - re-exports every CX_ function
'''

SERVER_SCRIPTS = '''"""cxkpi-xl's Refresh KPIs scripts for xlwings Server.

Put this file into your xlwings Server project's app/custom_scripts/ folder and add
`from .cxkpi_scripts import *` to app/custom_scripts/__init__.py. The scripts are bound to
the shape named cxkpi_refresh on Start here and on the Report's header.
"""

from cxkpi_xl.excel import cx_refresh, cx_refresh_report  # noqa: F401
'''


RUN_MAIN = '''"""Refresh {name} from Excel (classic xlwings): the Refresh KPIs button of the
.xlsm (its SampleCall macro) and "Run main" in the xlwings ribbon import this file, named
after the workbook, and run main(). It writes the Report and Data Issues sheets through
Excel, which keeps everything else in the workbook.
"""

from cxkpi_xl.excel import main

if __name__ == "__main__":  # run from a terminal with the workbook open in Excel
    import xlwings as xw

    xw.Book({name!r}).set_mock_caller()
    main()
'''


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


def _write_wheel(directory: Path, force: bool) -> Path:
    from .wheel import wheel_name, write_wheel

    if (directory / wheel_name()).exists() and not force:
        raise click.ClickException(
            f"{directory / wheel_name()} exists; use --force to overwrite it"
        )
    path = write_wheel(directory)
    click.echo(f"wrote {path}")
    return path


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--wheel-url",
    default=None,
    help="The URL where you host the wheel this command writes (it goes into requirements.txt).",
)
@click.option(
    "--requirement",
    default=None,
    help="Instead of --wheel-url, any requirement line (e.g. cxkpi-xl==X once it is on PyPI).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def lite(directory: Path, wheel_url: str | None, requirement: str | None, force: bool) -> None:
    """Write main.py, requirements.txt and the cxkpi-xl wheel for the xlwings Lite editor."""
    import xlwings

    wheel = _write_wheel(directory, force)
    _write_new(directory / "main.py", LITE_MAIN, force)
    line = requirement or wheel_url
    if line is None:
        line = (
            f"# cxkpi-xl: put the URL where you host {wheel.name} on this line (see the steps\n"
            f"# that `cxkpi lite` printed); cxkpi-xl=={__version__} works once it is on PyPI."
        )
    _write_new(directory / "requirements.txt", f"xlwings=={xlwings.__version__}\n{line}\n", force)
    if line.startswith("#"):
        click.echo(
            f"Next:\n"
            f"1. Host {wheel.name} at an https URL that allows cross-origin requests (xlwings\n"
            f"   Lite downloads it from the browser), e.g. commit it to a GitHub repository and\n"
            f"   use https://raw.githubusercontent.com/<owner>/<repo>/<branch>/{wheel.name}\n"
            f"2. cxkpi lite {directory} --wheel-url <that URL> --force\n"
            f"   (or put the URL on line 2 of requirements.txt yourself)\n"
            f"3. In Excel open the xlwings Lite add-in, paste main.py into its editor and\n"
            f"   requirements.txt into its requirements.txt tab.\n"
            f"cxkpi-xl is not on PyPI yet: cxkpi-xl=={__version__} in requirements.txt works once "
            "it is released there."
        )
    else:
        click.echo(
            "Next: in Excel open the xlwings Lite add-in, paste main.py into its editor and "
            f"requirements.txt into its requirements.txt tab ({line} must serve {wheel.name})."
        )


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def server(directory: Path, force: bool) -> None:
    """Write the custom-functions and custom-scripts modules, the cxkpi-xl wheel and a
    requirements.txt for an xlwings Server project."""
    wheel = _write_wheel(directory, force)
    _write_new(directory / "cxkpi_functions.py", SERVER_MODULE, force)
    _write_new(directory / "cxkpi_scripts.py", SERVER_SCRIPTS, force)
    _write_new(directory / "requirements.txt", f"./{wheel.name}\n", force)
    click.echo(
        "Next:\n"
        "1. Copy cxkpi_functions.py to app/custom_functions/ of your xlwings Server project\n"
        "   and add `from .cxkpi_functions import *` to app/custom_functions/__init__.py.\n"
        "2. Copy cxkpi_scripts.py to app/custom_scripts/ and add\n"
        "   `from .cxkpi_scripts import *` to app/custom_scripts/__init__.py.\n"
        f"3. Copy {wheel.name} and requirements.txt to the project's root folder and run\n"
        "   `pip install -r requirements.txt` there (or add its line to your requirements).\n"
        f"cxkpi-xl is not on PyPI yet: cxkpi-xl=={__version__} works once it is released there."
    )


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="--set")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _load(source: str, sets: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Read a source, or exit non-zero with a one-line reason."""
    from .data.reader import SourceError, read

    try:
        if Path(source).suffix.lower() in (".xlsx", ".xlsm") and Path(source).is_file():
            from .data.choose import read_for_book  # the source its Settings name, if any

            return read_for_book(Path(source), None, _parse_sets(sets), read=read)
        return read(source, _parse_sets(sets))
    except (SourceError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def issue_line(issue) -> str:  # type: ignore[no-untyped-def]
    """One issue in words, its value as the user typed it:
    ``Surveys row 2, score: 11 is outside 0..10 (NPS scale) (skipped the row)``; an issue
    about a whole column (no row, no value) names no value."""
    from .data.cells import show_value

    where = f"{issue.sheet} row {issue.row}" if issue.row else issue.sheet
    whole_column = issue.row is None and issue.value is None
    value = "" if whole_column else f"{show_value(issue.value)} "
    return f"{where}, {issue.column}: {value}{issue.problem} ({issue.action})"


def _print_issues(issues: list, limit: int | None = 5, hint: str = "") -> None:  # type: ignore[type-arg]
    """The count of data issues and the first ``limit`` of them (None: all) on stderr."""
    if not issues:
        return
    click.echo(f"{len(issues)} data issue{'s' if len(issues) != 1 else ''} found:", err=True)
    for issue in issues[:limit]:
        click.echo(f"  {issue_line(issue)}", err=True)
    if limit is not None and len(issues) > limit:
        click.echo(f"  ... and {len(issues) - limit} more{hint}", err=True)


SET_HELP = "Override a setting, e.g. --set granularity=quarter (repeatable)."
SOURCE_HELP = (
    "Read the input tables from here instead of BOOK: a folder of Parquet files, a DuckDB "
    "file, or a connection URL (postgres://..., duckdb://..., spark://local/FOLDER)."
)


@main.command()
@click.argument("source", type=click.Path(path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option(
    "--issues", "all_issues", is_flag=True, help="List every data issue, not just the first 5."
)
def kpis(source: str, fmt: str, sets: tuple[str, ...], all_issues: bool) -> None:
    """Compute every KPI for every period of SOURCE: an .xlsx/.xlsm workbook, a folder
    of CSV files named after the tables (Customers.csv, MRR.csv, ...), a folder of
    Parquet files, a DuckDB file or a connection URL (postgres://..., spark://local/DIR).
    Data issues go to stderr (all of them with --issues) and into the JSON output's
    "issues"."""
    from .catalogue import BY_ID
    from .engine import compute

    data = _load(source, sets)
    try:
        report = compute(data, breakdowns=False, impact=fmt == "json")
    except ValueError as e:  # e.g. MRR too large to add up exactly
        raise click.ClickException(str(e)) from None
    _print_issues(report.issues, None if all_issues else 5, ": cxkpi kpis --issues lists them all")
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=1, allow_nan=False))
    elif fmt == "csv":
        frame = report.frame()
        frame.insert(0, "title", [BY_ID[i].title for i in frame.index])
        frame.index.name = "kpi"
        click.echo(frame.to_csv(), nl=False)
    else:
        _print_report(report)
        n = len(report.issues)
        if n:
            more = "" if all_issues else "; --issues lists them all"
            click.echo(f"{n} data issue{'s' if n != 1 else ''} (on stderr{more})")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "medium", "large"]),
    default="small",
    show_default=True,
)
@click.option(
    "--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def sample(directory: Path, size: str, fmt: str, seed: int, force: bool) -> None:
    """Write realistic sample data (every input table) to DIRECTORY: the workbook
    DIRECTORY/cx_sample.xlsx, or with --format csv one CSV file per table (Customers.csv,
    MRR.csv, ..., Settings.csv) in DIRECTORY itself, where `cxkpi kpis DIRECTORY` reads
    them."""
    from .data.sample import CSV_FILES, generate, write_csv, write_workbook

    if fmt == "xlsx":
        existing = [directory / "cx_sample.xlsx"]
    else:
        existing = [directory / name for name in CSV_FILES]
    existing = [p for p in existing if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists; use --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    tables = generate(size, seed=seed)
    if fmt == "xlsx":
        target = write_workbook(tables, directory / "cx_sample.xlsx")
    else:
        target = write_csv(tables, directory)
    click.echo(str(target))
    click.echo(f"Next: cxkpi kpis {target}", err=True)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sample-data", is_flag=True, help="Fill the Tables with sample data.")
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "medium", "large"]),
    default="small",
    show_default=True,
    help="Size of the sample data.",
)
@click.option(
    "--formulas",
    type=click.Choice(["native", "udf"]),
    default="native",
    show_default=True,
    help="native: plain Excel formulas; udf: the CX_ functions (needs xlwings).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def template(path: Path, sample_data: bool, size: str, formulas: str, force: bool) -> None:
    """Write the template workbook: input Tables, Settings, KPI Summary, Definitions."""
    from .data.sample import generate
    from .workbook.template import TemplateError, build

    tables = generate(size) if sample_data else None
    try:
        build(path, tables, formulas=formulas, force=force)
    except TemplateError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path}")
    runner = path.with_suffix(".py")
    if not runner.exists() or force:
        runner.write_text(RUN_MAIN.format(name=path.name), encoding="utf-8")
        click.echo(
            f"wrote {runner} (classic xlwings: the Refresh KPIs button of an .xlsm and "
            "Run main in the xlwings ribbon run its main())"
        )
    if not path.stem.isidentifier():
        click.echo(
            f"note: classic xlwings' Run main imports {runner.name} as a module, which needs "
            "a workbook name without spaces or dashes",
            err=True,
        )


def _run_refresh(  # type: ignore[no-untyped-def]
    book: Path,
    output: Path | None,
    sets: tuple[str, ...],
    quiet: bool,
    force: bool = False,
    cache: bool = True,
    source: str | None = None,
):
    """Refresh with a progress bar on stderr; exit non-zero with a one-line reason."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .refresh import STAGES, RefreshError, refresh

    overrides = _parse_sets(sets)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=quiet or not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task("checking", total=len(STAGES))

        def stage(name: str) -> None:
            progress.update(task, description=name, completed=STAGES.index(name))

        try:
            done = refresh(
                book,
                output=output,
                overrides=overrides,
                stage=stage,
                force=force,
                cache=cache,
                source=source,
            )
        except RefreshError as e:
            raise click.ClickException(str(e)) from None
        progress.update(task, completed=len(STAGES))
    return done


@main.command()
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the refreshed workbook here and leave BOOK untouched.",
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--source", help=SOURCE_HELP)
@click.option(
    "--force",
    is_flag=True,
    help="Recompute even when nothing changed since the last refresh, and refresh a "
    "digitally signed workbook anyway, removing its signature.",
)
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Read every table from BOOK; neither read nor write the read cache.",
)
@click.option(
    "--pdf",
    "pdf",
    is_flag=True,
    help="Also print the Report to BOOK.pdf (beside the refreshed workbook) with LibreOffice.",
)
def refresh(
    book: Path,
    output: Path | None,
    sets: tuple[str, ...],
    quiet: bool,
    source: str | None,
    force: bool,
    no_cache: bool,
    pdf: bool,
) -> None:
    """Recompute every KPI from BOOK's input Tables and write its Report and Data Issues
    sheets. Everything else in the workbook stays exactly as it was. Any failure is one
    line, and changes nothing. Tables that did not change since the last refresh come from
    the read cache; if nothing changed at all, nothing is done (--force recomputes)."""
    if not (force or no_cache or pdf) and output is None and source is None:
        from .refresh import nothing_changed

        if nothing_changed(book, _parse_sets(sets)):
            click.echo(
                f"{book.name}: nothing changed since the last refresh, the Report is up to "
                "date (--force recomputes)"
            )
            return
    done = _run_refresh(book, output, sets, quiet, force, cache=not no_cache, source=source)
    _print_issues(done.report.issues, hint=": the Data Issues sheet lists them all")
    click.echo(done.summary())
    if pdf:
        from .report.pdf import print_report

        click.echo(print_report(done.report, done.target, done.empty_tables))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="cxkpi-demo")
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "medium"]),
    default="small",
    show_default=True,
    help="Size of the sample data.",
)
@click.option(
    "--new",
    "new",
    is_flag=True,
    help="Write a fresh demo workbook; an existing one is kept beside it, renamed.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo(directory: Path, size: str, new: bool, quiet: bool) -> None:
    """Write a sample-data workbook to DIRECTORY (default cxkpi-demo), refresh it, and
    print the KPIs of its latest period. When the demo workbook is there already (you
    may have edited it), it is refreshed as it is; --new writes a fresh one."""
    from .data.sample import generate
    from .workbook.template import TemplateError, build

    directory.mkdir(parents=True, exist_ok=True)
    book = directory / "cx_demo.xlsx"
    if book.exists() and new:
        kept = next(
            p for n in range(1, 10_000) if not (p := directory / f"cx_demo ({n}).xlsx").exists()
        )
        book.rename(kept)
        click.echo(f"Kept the previous demo workbook as {kept}.")
    if book.exists():
        click.echo(f"{book} is there already: refreshing it as it is (--new writes a fresh one).")
    else:
        try:
            build(book, generate(size), force=False)
        except TemplateError as e:
            raise click.ClickException(str(e)) from None
    done = _run_refresh(book, None, (), quiet)
    _print_latest(done.report)
    click.echo(done.summary())
    click.echo(f"Open {book} and look at the Report sheet.")


def _print_latest(report) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    from .catalogue import BY_ID, format_value

    if not report.periods:
        click.echo("No periods with data.")
        return
    latest = report.periods[-1]
    table = Table(title=f"KPIs of {latest}", expand=False)
    table.add_column("KPI")
    table.add_column(latest, justify="right")
    for kpi_id, values in report.kpis.items():
        k = BY_ID[kpi_id]
        table.add_row(k.title, format_value(values[-1], k.unit))
    Console().print(table)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    from .catalogue import BY_ID, format_value

    console = Console()
    shown = report.periods[-max(1, (console.width - 40) // 12) :]
    table = Table(
        title=f"cxkpi-xl: {len(report.periods)} {report.granularity} periods", expand=False
    )
    table.add_column("KPI", overflow="fold")
    for p in shown:
        table.add_column(p, justify="right")
    offset = len(report.periods) - len(shown)
    for kpi_id, values in report.kpis.items():
        k = BY_ID[kpi_id]
        table.add_row(k.title, *(format_value(v, k.unit) for v in values[offset:]))
    console.print(table)
    if offset:
        console.print(f"(the last {len(shown)} periods; --format csv or json gives all)")


def _print_table() -> None:
    from rich.console import Console
    from rich.table import Table

    from .catalogue import CATALOGUE, excel_signature

    table = Table(title="cxkpi-xl KPIs", show_lines=False, expand=False)
    for heading in ("id", "unit", "Excel function", "formula"):
        table.add_column(heading, overflow="fold")
    for k in CATALOGUE:
        excel = excel_signature(k) if k.excel_name else "(from the input tables)"
        table.add_row(k.id, k.unit, excel, k.formula)
    Console(width=max(120, Console().width)).print(table)


@main.group()
def cache() -> None:
    """The read cache: each input table of a refreshed workbook, kept so that the next
    refresh re-reads only what changed (in the user's cache directory, or
    $CXKPI_CACHE_DIR)."""


@cache.command("clear")
def cache_clear() -> None:
    """Remove the read cache (every workbook's); the next refresh reads everything."""
    from .data.cache import cache_root, clear

    n = clear()
    click.echo(f"Removed the read cache of {n} workbook{'s' if n != 1 else ''} ({cache_root()})")


@cache.command("info")
def cache_info() -> None:
    """Where the read cache is and how much it holds."""
    from .data.cache import info

    root, books, size = info()
    click.echo(f"{root}: {books} workbook{'s' if books != 1 else ''}, {size / 2**20:.1f} MiB")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
