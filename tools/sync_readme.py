"""Rewrite the generated parts of README.md from the registries (run after changing the
KPI catalogue): python tools/sync_readme.py"""

from __future__ import annotations

import re
from pathlib import Path

from cxkpi_xl.catalogue import markdown_table
from cxkpi_xl.data.schema import markdown_settings, markdown_tables

README = Path(__file__).resolve().parents[1] / "README.md"


BLOCKS = {
    "kpi-table": markdown_table,
    "schema-table": markdown_tables,
    "settings-table": markdown_settings,
}


def render(text: str) -> str:
    """README text with every generated block rewritten."""
    for name, make in BLOCKS.items():
        text = re.sub(
            rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
            lambda m, make=make: m.group(1) + make() + m.group(2),
            text,
            flags=re.S,
        )
    return text


def main() -> None:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    README.write_text(new, encoding="utf-8")
    print("README.md is up to date" if new == text else "README.md updated")


if __name__ == "__main__":
    main()
