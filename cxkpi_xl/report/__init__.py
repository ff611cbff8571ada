"""The output side: the Report and Data Issues sheets laid out from a
:class:`~cxkpi_xl.engine.Report` (:mod:`.layout`) and written into a workbook at zip-part
level without touching its other parts (:mod:`.package`). It never reads input data.
"""
