"""The Usage table as the engine's usage KPIs read it: distinct users per day and per
calendar month, and the distinct (month, customer, feature) triples, with customer and
feature as integer codes into small dictionaries of their distinct (normalised) values.

Stickiness needs the first two, product usage rate and feature adoption (report, segment
and owner breakdowns) the triples, the report's period axis the months. A
:class:`UsageSummary` is built either from validated Usage rows (:meth:`from_rows`: the
workbook and CSV paths) or in a source's engine (``cxkpi_xl.data.sources``), so that
millions of usage events never reach Python; the engine computes its KPIs from the summary
alone, whichever way it was built. Its memory is that of the triples, in small ints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd


def _small(codes: np.ndarray) -> np.ndarray:
    """Codes (-1 for none), or months, in the smallest signed int type that holds them."""
    codes = np.asarray(codes)
    top = int(codes.max()) if len(codes) else 0
    dtype = np.int16 if top < 2**15 else np.int32 if top < 2**31 else np.int64
    return codes.astype(dtype, copy=False)


@dataclass(frozen=True)
class UsageSummary:
    """Clean Usage rows, summarised. Days are days since 1970-01-01, months month indexes
    (``year * 12 + month - 1``, as :func:`~cxkpi_xl.data.periods.months_of`)."""

    days: np.ndarray
    """Each day with activity (int64, ascending)."""
    day_users: np.ndarray
    """Distinct users active that day."""
    months: np.ndarray
    """Each month with activity (int64, ascending)."""
    month_users: np.ndarray
    """Distinct users active that month."""
    t_month: np.ndarray
    """Month of each distinct (month, customer, feature) triple."""
    t_customer: np.ndarray
    """Customer of each triple: a position in :attr:`customers`, -1 for none."""
    t_feature: np.ndarray
    """Feature of each triple: a position in :attr:`features`, -1 for none."""
    customers: np.ndarray
    """The distinct customer ids (each once; object array, or float codes in the engine)."""
    features: np.ndarray
    """The distinct features (each once; object array)."""

    @property
    def empty(self) -> bool:
        """No clean Usage row (every clean row makes a triple)."""
        return len(self.t_month) == 0

    @property
    def nbytes(self) -> int:
        arrays = (self.days, self.day_users, self.months, self.month_users)
        triples = (self.t_month, self.t_customer, self.t_feature)
        return sum(a.nbytes for a in (*arrays, *triples))

    def with_customers(self, customers: np.ndarray) -> UsageSummary:
        return replace(self, customers=customers)

    def triples(self, keep: np.ndarray) -> UsageSummary:
        """The summary with only the triples where ``keep`` (for a group of customers; the
        day and month counts, which are of all customers, are left out)."""
        none = np.zeros(0, np.int64)
        return replace(
            self,
            days=none,
            day_users=none,
            months=none,
            month_users=none,
            t_month=self.t_month[keep],
            t_customer=self.t_customer[keep],
            t_feature=self.t_feature[keep],
        )

    def digest(self) -> bytes:
        """A digest of everything in the summary (for the engine's memo key)."""
        h = hashlib.blake2b(digest_size=32)
        for a in (self.days, self.day_users, self.months, self.month_users):
            h.update(np.ascontiguousarray(a, dtype=np.int64).view(np.uint8).data)
            h.update(b"\0")
        for a in (self.t_month, self.t_customer, self.t_feature):
            h.update(np.ascontiguousarray(a, dtype=np.int64).view(np.uint8).data)
            h.update(b"\0")
        for values in (self.customers, self.features):
            h.update(pd.util.hash_pandas_object(pd.Series(values), index=False).to_numpy().data)
            h.update(b"\0")
        return h.digest()

    @classmethod
    def build(
        cls,
        days: np.ndarray,
        day_users: np.ndarray,
        months: np.ndarray,
        month_users: np.ndarray,
        t_month: np.ndarray,
        t_customer: np.ndarray,
        t_feature: np.ndarray,
        customers: np.ndarray,
        features: np.ndarray,
    ) -> UsageSummary:
        """A summary from arrays in any int type (sorted by day and month here)."""
        d, m = np.argsort(days, kind="stable"), np.argsort(months, kind="stable")
        return cls(
            np.asarray(days, np.int64)[d],
            np.asarray(day_users, np.int64)[d],
            np.asarray(months, np.int64)[m],
            np.asarray(month_users, np.int64)[m],
            _small(t_month),  # in their own int type, not copied to int64 on the way
            _small(t_customer),
            _small(t_feature),
            np.asarray(customers, dtype=object),
            np.asarray(features, dtype=object),
        )

    @classmethod
    def from_rows(cls, u: pd.DataFrame) -> UsageSummary:
        """The summary of validated Usage rows (``activity_date`` datetime64, ``user_id``,
        ``customer_id`` and ``feature`` with None/NaN for a blank)."""
        if u.empty:
            none = np.zeros(0, np.int64)
            obj = np.zeros(0, dtype=object)
            return cls.build(none, none, none, none, none, none, none, obj, obj)
        days = u["activity_date"].to_numpy("datetime64[D]").astype(np.int64)
        months = u["activity_date"].to_numpy("datetime64[M]").astype(np.int64) + 1970 * 12
        users = pd.factorize(u["user_id"])[0].astype(np.int64)
        d0, span = int(days.min()), int(days.max() - days.min()) + 1
        user_days = pd.unique(users * span + (days - d0))
        day_list, day_users = np.unique(user_days % span + d0, return_counts=True)
        m0, mspan = int(months.min()), int(months.max() - months.min()) + 1
        user_months = pd.unique(users * mspan + (months - m0))
        month_list, month_users = np.unique(user_months % mspan + m0, return_counts=True)
        ccodes, customers = pd.factorize(u["customer_id"])
        fcodes, features = pd.factorize(u["feature"])
        nc, nf = len(customers) + 1, len(features) + 1
        key = pd.unique(((months - m0) * nc + (ccodes.astype(np.int64) + 1)) * nf + (fcodes + 1))
        f = key % nf - 1
        c = (key // nf) % nc - 1
        m = key // nf // nc + m0
        return cls.build(
            day_list, day_users, month_list, month_users, m, c, f,
            np.asarray(customers, dtype=object), np.asarray(features, dtype=object),
        )  # fmt: skip
