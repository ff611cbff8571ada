"""The KPI formulas, one module per family: pure functions of arrays or aggregates.

They import nothing of the product but :mod:`cxkpi_xl._check`; the period engine
(:mod:`cxkpi_xl.engine`) and the Excel functions call them. Their public names are
exported from :mod:`cxkpi_xl` and listed in :data:`cxkpi_xl.catalogue.CATALOGUE`.
"""
