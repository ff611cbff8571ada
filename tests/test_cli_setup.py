"""`cxkpi lite` and `cxkpi server` write modules that really register the functions and
the Refresh KPIs scripts, the wheel they install, and requirements that name it."""

from __future__ import annotations

import importlib.util

from click.testing import CliRunner
from xlwings.server import custom_functions_meta, custom_scripts_meta

from cxkpi_xl.catalogue import excel_functions
from cxkpi_xl.cli import main


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WHEEL = "cxkpi_xl-0.1.0-py3-none-any.whl"
BUTTONS = {"[cxkpi_refresh]Start here!A14", "[cxkpi_refresh]Report!B1"}


def test_lite_writes_main_requirements_and_the_wheel(tmp_path):
    result = CliRunner().invoke(main, ["lite", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / WHEEL).is_file()
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    # No package index holds cxkpi-xl yet: the line for it says where the URL goes, and
    # the steps to host the wheel are printed; a pin that cannot install is not written.
    assert requirements[0].startswith("xlwings==")
    assert all(line.startswith("#") for line in requirements[1:])
    assert "--wheel-url" in result.output and "raw.githubusercontent.com" in result.output
    assert "works once it is released" in result.output
    # What the Lite editor runs: its main module must expose every CX_ function and the
    # two Refresh KPIs scripts, bound to the shapes the template and the Report draw.
    module = _load(tmp_path / "main.py")
    names = {f["name"] for f in custom_functions_meta(module)["functions"]}
    assert names == {k.excel_name for k in excel_functions()}
    assert {s["button"] for s in custom_scripts_meta(module)} == BUTTONS


def test_lite_puts_the_hosted_wheel_url_into_requirements(tmp_path):
    url = "https://example.org/files/" + WHEEL
    result = CliRunner().invoke(main, ["lite", str(tmp_path), "--wheel-url", url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "requirements.txt").read_text().splitlines()[1] == url


def test_lite_refuses_to_overwrite(tmp_path):
    (tmp_path / "main.py").write_text("# mine")
    result = CliRunner().invoke(main, ["lite", str(tmp_path)])
    assert result.exit_code != 0 and "exists" in result.output
    assert (tmp_path / "main.py").read_text() == "# mine"
    custom = CliRunner().invoke(
        main, ["lite", str(tmp_path), "--force", "--requirement", "https://x.invalid/c.whl"]
    )
    assert custom.exit_code == 0
    assert "https://x.invalid/c.whl" in (tmp_path / "requirements.txt").read_text()


def test_server_module_reexports(tmp_path):
    result = CliRunner().invoke(main, ["server", str(tmp_path)])
    assert result.exit_code == 0, result.output
    module = _load(tmp_path / "cxkpi_functions.py")
    names = {f["name"] for f in custom_functions_meta(module)["functions"]}
    assert names == {k.excel_name for k in excel_functions()}
    scripts = _load(tmp_path / "cxkpi_scripts.py")
    assert {s["button"] for s in custom_scripts_meta(scripts)} == BUTTONS
    assert (tmp_path / WHEEL).is_file()
    assert (tmp_path / "requirements.txt").read_text() == f"./{WHEEL}\n"
