"""Loaded before any test module: xlwings picks its runtime when it is first imported,
so the Office.js runtime of xlwings Lite and Server is switched on here, before anything
imports xlwings. The noncommercial key is accepted for this (PolyForm Noncommercial)."""

import os

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")
