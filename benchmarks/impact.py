"""Time of the "Does CX pay?" analysis on the large sample, against the whole compute.

On ``generate("large", seed=1)`` (read from DataFrames, so reading is left out): the
start/stop table, the Cox fit (statsmodels PHReg, stratified by segment), the NRR
bootstrap, the NPS change tests, the whole analysis, and ``compute`` with breakdowns with
and without it. Target: the analysis is a small part of the compute (it must not
dominate the refresh). Best of --repeat runs.

    python benchmarks/impact.py [--repeat 2]
"""

from __future__ import annotations

import argparse

from _timing import best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", default="large")
    args = parser.parse_args()

    from cxkpi_xl.data.reader import read
    from cxkpi_xl.data.sample import generate
    from cxkpi_xl.engine import compute
    from cxkpi_xl.engine import impact as im
    from cxkpi_xl.engine.assemble import _encode_ids
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.breakdowns import _nps_category_matrix
    from cxkpi_xl.engine.subscriptions import _Base

    data = read(generate(args.size, seed=1))
    enc = _encode_ids(data)
    axis = _axis(enc, "month")
    assert axis is not None
    base = _Base(enc, axis)
    cat = _nps_category_matrix(enc, base, axis)
    segments = im._segments(enc, base)
    im.cx_impact(enc, base, axis)  # imports statsmodels and scipy once, outside the timings

    t_spells, spells = best(lambda: im.churn_spells(base, cat, segments), args.repeat)
    t_fit, (fit, note) = best(lambda: im._hazard(spells, True), args.repeat)
    t_nrr, _ = best(lambda: im._nrr_by_category(base, cat), args.repeat)
    t_nps, _ = best(lambda: im._nps_changes(enc, axis), args.repeat)
    t_all, _ = best(lambda: im.cx_impact(enc, base, axis), args.repeat)
    t_with, _ = best(lambda: compute(data), args.repeat)
    t_without, _ = best(lambda: compute(data, impact=False), args.repeat)

    customers = len(base.ids)
    print(f"sample {args.size}: {customers:,} customers, {axis.size - 1} months, "
          f"{len(spells):,} start/stop rows, {int(spells['churned'].sum()):,} churn events")  # fmt: skip
    if fit is not None:
        hrs = ", ".join(f"{lv} {h:.2f}" for lv, h in zip(fit.levels, fit.hazard_ratio, strict=True))
        print(f"hazard ratios: {hrs}")
    else:
        print(f"no fit: {note}")
    rows = [
        ("start/stop table", t_spells),
        ("Cox fit (PHReg, Efron, strata)", t_fit),
        ("NRR bootstrap (4 categories)", t_nrr),
        ("NPS change tests", t_nps),
        ("whole analysis (cx_impact)", t_all),
        ("compute, breakdowns, with it", t_with),
        ("compute, breakdowns, without it", t_without),
    ]
    for name, t in rows:
        print(f"{name:<34}{t:>8.3f} s")
    print(f"share of the compute: {t_all / t_with:.0%}")


if __name__ == "__main__":
    main()
