"""Fit times of the predictive models on CDNOW, side by side with the lifetimes package.

On the 1/10 sample (2,357 customers) and the full master file (23,570), 39-week
calibration to 1997-09-30, weeks: BG/NBD and Gamma-Gamma fits, ours and, where it
installs (``pip install -e ".[bench]"``), lifetimes' on the same RFM summary in the same
run. Target: our time / lifetimes' time <= 1.0. Best of --repeat runs.

    python benchmarks/clv.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from _timing import best

from cxkpi_xl.models import BetaGeoModel, GammaGammaModel, rfm_summary

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"


def load(name: str) -> pd.DataFrame:
    if name == "sample":
        raw = pd.read_csv(
            DATA / "CDNOW_sample.txt",
            sep=r"\s+",
            header=None,
            names=["m", "id", "date", "cds", "dollars"],
            dtype={"date": str},
        )
    else:
        raw = pd.read_csv(
            DATA / "CDNOW_master.txt", sep=r"\s+", dtype={"date": str, "customer_id": str}
        )
        raw = raw.rename(columns={"customer_id": "id", "dollar_value": "dollars"})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return rfm_summary(raw, "id", "date", "dollars", observation_end="1997-09-30", freq="W")


def bench(name: str, rfm: pd.DataFrame, repeat: int, lifetimes: Any) -> None:
    f, r, T = rfm["frequency"], rfm["recency"], rfm["T"]
    # Gamma-Gamma takes repeat buyers with positive spends (the master file has repeat
    # purchases of $0, which the model cannot take).
    buyers = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    fb, mb = buyers["frequency"], buyers["monetary_value"]
    cases = [
        ("BG/NBD", lambda: BetaGeoModel().fit(f, r, T),
         (lambda: lifetimes.BetaGeoFitter().fit(f, r, T)) if lifetimes else None),
        ("Gamma-Gamma", lambda: GammaGammaModel().fit(fb, mb),
         (lambda: lifetimes.GammaGammaFitter().fit(fb, mb)) if lifetimes else None),
    ]  # fmt: skip
    for model, ours, theirs in cases:
        t_ours, fitted = best(ours, repeat)
        params = {k: round(v, 3) for k, v in fitted.params_.items()}
        if theirs is None:
            print(f"{name:<8}{len(rfm):>10,}  {model:<12}{t_ours:>9.3f}{'-':>13}{'-':>7}  {params}")
            continue
        t_theirs, _ = best(theirs, repeat)
        print(
            f"{name:<8}{len(rfm):>10,}  {model:<12}{t_ours:>9.3f}{t_theirs:>13.3f}{t_ours / t_theirs:>7.2f}  {params}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import lifetimes
    except ImportError:
        lifetimes = None
        print("lifetimes is not installed: ours only (pip install lifetimes)")
    warnings.simplefilter("ignore")
    print(
        f"{'data':<8}{'customers':>10}  {'model':<12}{'ours s':>9}{'lifetimes s':>13}{'ratio':>7}  params (ours)"
    )
    for name in ("sample", "master"):
        bench(name, load(name), args.repeat, lifetimes)


if __name__ == "__main__":
    main()
