"""Real data: the CDNOW purchases (../shared/data/cdnow). The engine's order KPIs must
agree with an independent computation written here with plain pandas."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from cxkpi_xl.engine import compute
from cxkpi_xl.reader import read


def _cdnow_master() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
    if here.exists():
        return here
    spec = importlib.util.find_spec("lifetimes")
    if spec and spec.submodule_search_locations:
        p = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"
        return p if p.exists() else None
    return None


MASTER = _cdnow_master()
pytestmark = pytest.mark.skipif(MASTER is None, reason="CDNOW data not found")


@pytest.fixture(scope="module")
def orders():
    raw = pd.read_csv(MASTER, sep=r"\s+", header=0, dtype={"customer_id": str, "date": str})
    return pd.DataFrame(
        {
            "order_id": range(len(raw)),
            "customer_id": raw["customer_id"],
            "order_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollar_value"],
        }
    )


def test_the_file_is_the_published_one(orders):
    assert len(orders) == 69_659 and orders["customer_id"].nunique() == 23_570


def test_yearly_order_kpis_match_an_independent_computation(orders):
    report = compute(read({"Orders": orders}, {"granularity": "year"}), breakdowns=False)
    assert report.periods == ["1997", "1998"]
    k = report.kpis
    for i, year in enumerate((1997, 1998)):
        in_year = orders[orders["order_date"].dt.year == year]
        upto = orders[orders["order_date"].dt.year <= year]
        # 1998 runs to the end of June only: half a year observed.
        years = 1.0 if year == 1997 else 0.5
        aov = in_year["amount"].sum() / len(in_year)
        frequency = len(in_year) / in_year["customer_id"].nunique() / years
        per_customer = upto.groupby("customer_id")["order_date"].agg(["count", "min", "max"])
        repeat = (per_customer["count"] >= 2).mean()
        lifespan = ((per_customer["max"] - per_customer["min"]).dt.days / 365.25).mean()
        assert k["average_order_value"][i] == pytest.approx(aov, rel=1e-12)
        assert k["purchase_frequency"][i] == pytest.approx(frequency, rel=1e-12)
        assert k["repeat_purchase_rate"][i] == pytest.approx(repeat, rel=1e-12)
        assert k["cltv"][i] == pytest.approx(aov * frequency * lifespan, rel=1e-12)
    # The README: the cohort made its first purchase in 1997 Q1, so every customer bought
    # in 1997, and the share who bought again can only grow with the second year.
    assert orders[orders["order_date"].dt.year == 1997]["customer_id"].nunique() == 23_570
    assert k["repeat_purchase_rate"][1] > k["repeat_purchase_rate"][0]
