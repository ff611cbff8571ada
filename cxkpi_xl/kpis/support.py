"""Support KPIs: first contact resolution.

Arguments are scalars or arrays that broadcast. Blank arguments give NaN; a zero
denominator gives ``zero_division``.
"""

from __future__ import annotations

import math
from typing import Any

from .._check import ZeroDivision, amounts, divide


def first_contact_resolution_rate(
    resolved_first_contact: Any, resolved: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """First contact resolution rate: tickets resolved at the first contact / resolved.

    Formula (seed 004): ``resolved tickets that needed one customer contact / resolved
    tickets``.

    Examples
    --------
    >>> first_contact_resolution_rate(720, 900)
    0.8
    """
    first = amounts(resolved_first_contact, "resolved_first_contact")
    total = amounts(resolved, "resolved")
    return divide(first, total, zero_division, "resolved")
