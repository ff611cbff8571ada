"""Helpers that call the Excel functions the way xlwings Lite and Server do."""

from __future__ import annotations

import asyncio
from typing import Any

import xlwings as xw
from xlwings.server import custom_functions_call

import cxkpi_xl.udfs as udfs

REQUIRED_NAMES = (
    "CX_NPS CX_NPS_BREAKDOWN CX_NPS_MOE CX_NPS_COUNTS CX_CSAT CX_CES CX_CES_EASY CX_STARS "
    "CX_CHURN CX_CRR CX_NRR CX_GRR CX_REVENUE_CHURN CX_QUICK_RATIO CX_ARPU "
    "CX_REVENUE_GROWTH CX_ATTACH_RATE CX_EXPANDED_RATE CX_CLTV CX_CLTV_SUB CX_CAC "
    "CX_LTV_CAC CX_CAC_PAYBACK CX_RETENTION_COST CX_REFERENCE_RATE CX_AT_RISK CX_HEALTH "
    "CX_FCR CX_CONVERSION CX_REPEAT_RATE CX_STICKINESS CX_USAGE_RATE CX_TTV_DAYS"
).split()
"""The Excel functions the Excel-functions issue requires by name."""

ERROR_TYPES = {"#DIV/0!": "Div0", "#N/A": "NotAvailable", "#NUM!": "Num", "#VALUE!": "Value"}


def shape(value: Any) -> Any:
    """An argument as Office.js sends it: always a 2-D list."""
    if isinstance(value, list):
        return [row if isinstance(row, list) else [row] for row in value]
    return [[value]]


def call(func_name: str, *args: Any) -> Any:
    """Run one custom function through xlwings' own dispatch; returns its 2-D result."""
    payload = {
        "func_name": func_name,
        "args": [shape(a) for a in args],
        "version": xw.__version__,
        "client": "Office.js",
        "runtime": "1.4",
    }
    return asyncio.run(custom_functions_call(payload, udfs))


def value(func_name: str, *args: Any) -> Any:
    """The single value of a one-cell result."""
    result = call(func_name, *args)
    assert len(result) == 1 and len(result[0]) == 1, result
    return result[0][0]


def error(kind: str) -> dict[str, str]:
    return {"type": "Error", "errorType": ERROR_TYPES[kind]}
