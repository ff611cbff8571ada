"""`cxkpi lite` and `cxkpi server` write modules that really register the functions."""

from __future__ import annotations

import importlib.util

from click.testing import CliRunner
from xlwings.server import custom_functions_meta

from cxkpi_xl.catalogue import excel_functions
from cxkpi_xl.cli import main


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lite_writes_main_and_requirements(tmp_path):
    result = CliRunner().invoke(main, ["lite", str(tmp_path)])
    assert result.exit_code == 0, result.output
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("xlwings==") and requirements[1].startswith("cxkpi-xl")
    # What the Lite editor runs: its main module must expose every CX_ function.
    names = {f["name"] for f in custom_functions_meta(_load(tmp_path / "main.py"))["functions"]}
    assert names == {k.excel_name for k in excel_functions()}


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
