"""Excel functions (xlwings UDFs) for every catalogue KPI: ``cxkpi_xl.udfs``."""
