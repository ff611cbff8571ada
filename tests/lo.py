"""LibreOffice as the test spreadsheet: recalculate workbooks headless, forcing a full
recalculation on load, and read the results back with openpyxl."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

RECALC_ON_LOAD = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice is missing: .ci/run must install libreoffice-calc-nogui")
        pytest.skip("LibreOffice is not installed")
    return found


def recalculate(paths: list[Path], out_dir: Path) -> list[Path]:
    """Open each workbook in LibreOffice, recalculate everything, save as xlsx."""
    exe = soffice()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        (Path(profile) / "user").mkdir()
        (Path(profile) / "user" / "registrymodifications.xcu").write_text(RECALC_ON_LOAD)
        cmd = [
            exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
            "--convert-to", "xlsx", "--outdir", str(out_dir), *map(str, paths),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    outs = [out_dir / p.name for p in paths]
    missing = [o for o in outs if not o.exists()]
    assert not missing, f"LibreOffice did not convert {missing}: {done.stdout} {done.stderr}"
    return outs


def named_value(wb, name: str):  # type: ignore[no-untyped-def]
    ((sheet, ref),) = list(wb.defined_names[name].destinations)
    return wb[sheet][ref.replace("$", "")].value
