"""The template workbook generator: ``cxkpi_xl.workbook``."""
