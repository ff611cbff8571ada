"""Rewrite the generated parts of README.md from the registries (run after changing the
KPI catalogue): python tools/sync_readme.py"""

from __future__ import annotations

import re
from pathlib import Path

from cxkpi_xl.catalogue import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    new = re.sub(
        r"(<!-- kpi-table:start -->\n).*?(<!-- kpi-table:end -->)",
        lambda m: m.group(1) + markdown_table() + m.group(2),
        text,
        flags=re.S,
    )
    README.write_text(new, encoding="utf-8")
    print("README.md is up to date" if new == text else "README.md updated")


if __name__ == "__main__":
    main()
