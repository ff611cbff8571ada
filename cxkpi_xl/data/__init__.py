"""The input side: the schema of the input tables and settings, the reader of workbooks
and CSV folders (normalising and validating every row into a
:class:`~cxkpi_xl.data.reader.Dataset`), cell helpers, the report periods, and the sample
data. Importers of other sources go here, each producing a ``Dataset``.
"""
