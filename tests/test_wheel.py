"""The package builds as an sdist and a pure-Python wheel that twine accepts, the wheel
holds the Excel functions and the template generator, and it installs into a fresh
virtual environment where ``import cxkpi_xl.udfs`` works; the wheel ``cxkpi lite`` and
``cxkpi server`` write holds the same files and installs the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cxkpi_xl.wheel import PACKAGES, write_wheel

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".hypothesis", ".cache", "*.pyc",
)  # fmt: skip


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_packages_are_those_the_project_declares():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(PACKAGES) == set(config["tool"]["setuptools"]["packages"])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """``python -m build`` on a copy of the source tree (no network: the installed
    setuptools), and the wheel of ``cxkpi_xl.wheel``."""
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    dist = tmp / "dist"
    _run(sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
         "--outdir", dist, source)  # fmt: skip
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    ours = write_wheel(tmp / "ours")
    return {"wheel": wheel, "sdist": sdist, "ours": ours}


def test_build_gives_a_pure_wheel_and_an_sdist_that_twine_accepts(built):
    pytest.importorskip("twine")
    assert built["wheel"].name == "cxkpi_xl-0.1.0-py3-none-any.whl"
    out = _run(sys.executable, "-m", "twine", "check", "--strict", built["wheel"], built["sdist"])
    assert out.count("PASSED") == 2, out
    with zipfile.ZipFile(built["wheel"]) as z:
        names = set(z.namelist())
    assert {"cxkpi_xl/udfs/__init__.py", "cxkpi_xl/workbook/template.py",
            "cxkpi_xl/workbook/button.py", "cxkpi_xl/report/button.py"} <= names  # fmt: skip


def test_our_wheel_holds_what_the_build_backend_puts_in_it(built):
    """The setup commands' wheel against setuptools' own: the same modules."""

    def modules(path: Path) -> set[str]:
        with zipfile.ZipFile(path) as z:
            return {n for n in z.namelist() if ".dist-info/" not in n}

    assert modules(built["ours"]) == modules(built["wheel"])
    with zipfile.ZipFile(built["ours"]) as z:
        record = z.read("cxkpi_xl-0.1.0.dist-info/RECORD").decode().splitlines()
        assert {line.split(",")[0] for line in record} == set(z.namelist())
        wheel = z.read("cxkpi_xl-0.1.0.dist-info/WHEEL").decode()
        assert "Tag: py3-none-any" in wheel and "Root-Is-Purelib: true" in wheel


def test_the_wheels_install_into_a_fresh_venv_and_import(built, tmp_path):
    venv = tmp_path / "venv"
    # the dependencies (numpy, pandas, xlwings) come from the system site-packages
    _run(sys.executable, "-m", "venv", "--system-site-packages", venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = (
        "import cxkpi_xl.udfs, cxkpi_xl.workbook.template, cxkpi_xl.excel\n"
        "print(cxkpi_xl.udfs.__file__)\n"
        "print(len([n for n in dir(cxkpi_xl.udfs) if n.startswith('CX_')]))\n"
    )
    for wheel in (built["wheel"], built["ours"]):
        _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--force-reinstall", wheel)  # fmt: skip
        where, count = _run(python, "-c", probe, cwd=tmp_path).splitlines()
        assert Path(where).resolve().is_relative_to(venv.resolve()), where
        assert int(count) > 30
