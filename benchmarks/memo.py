"""compute() with a memo of its expensive parts, on the large workbook's Dataset.

Reads ``benchmarks/.cache/engine_large.xlsx`` (built by ``benchmarks/engine.py``) once, or
loads the Dataset pickled by an earlier run (``--dataset PATH``: written if missing), then
times, in one process:

- cold: ``compute(data)`` without a memo, and with an empty memo (its writing included);
- warm, nothing changed: ``compute(data, memo=...)``;
- warm, one Surveys row changed (a different row each repeat): the predictive models are
  reused, "Does CX pay?" is recomputed;
- the cost of the keys (``part_key`` of every part), with and without ``Dataset.digests``
  (``--digests`` fills them as a workbook source with the read cache would: per table,
  changed when the table changes).

Every warm Report is checked equal to a compute without the memo. Prints seconds (best of
``--repeat``) and the process's peak RSS after each step (it only grows).

    python benchmarks/memo.py [--repeat 2] [--dataset /tmp/engine_large.pkl] [--digests]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

from _timing import best

HERE = Path(__file__).resolve().parent
BOOK = HERE / ".cache" / "engine_large.xlsx"


def _peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--digests", action="store_true")
    args = parser.parse_args()

    from cxkpi_xl.data.reader import Dataset, read
    from cxkpi_xl.engine.assemble import Report, _encode_ids, compute
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.memo import PARTS, Memo, part_key

    if args.dataset is not None and args.dataset.exists():
        with args.dataset.open("rb") as f:
            data = pickle.load(f)  # our own pickle, written below
    else:
        if not BOOK.exists():
            raise SystemExit(f"{BOOK} is missing: run benchmarks/engine.py first")
        t0 = time.perf_counter()
        data = read(BOOK)
        print(f"read {BOOK.name}: {time.perf_counter() - t0:.1f} s")
        if args.dataset is not None:
            with args.dataset.open("wb") as f:
                pickle.dump(data, f, protocol=5)
    rows = sum(len(t) for t in data.tables.values())
    print(f"{rows:,} input rows; peak RSS {_peak_mib():.0f} MiB")
    if args.digests:
        data = dataclasses.replace(data, digests={t: f"{t} v0" for t in data.tables})

    def changed(i: int) -> Dataset:
        sv = data.tables["Surveys"].copy()
        nps = (sv["survey"] == "NPS").to_numpy().nonzero()[0]
        row = int(nps[len(nps) // 2 + i])  # an NPS answer: 0..10
        col = sv.columns.get_loc("score")
        sv.iloc[row, col] = 0.0 if sv.iloc[row, col] >= 7 else 10.0
        digests = {**data.digests, "Surveys": f"Surveys v{i + 1}"} if args.digests else {}
        return dataclasses.replace(data, tables={**data.tables, "Surveys": sv}, digests=digests)

    def report(label: str, seconds: float) -> None:
        print(f"{label:<48} {seconds:7.2f} s   peak RSS {_peak_mib():6.0f} MiB")

    cold, expected = best(lambda: compute(data), args.repeat)
    report("cold, no memo", cold)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)

        def cold_memo() -> Report:
            for p in directory.iterdir():
                p.unlink()
            return compute(data, memo=Memo(directory))

        seconds, _ = best(cold_memo, 1)
        report("cold, empty memo (writing it)", seconds)
        size = sum(p.stat().st_size for p in directory.iterdir())
        print(f"  memo directory: {size / 2**20:.1f} MiB in {len(list(directory.iterdir()))} files")

        memo = Memo(directory)
        seconds, warm = best(lambda: compute(data, memo=memo), args.repeat)
        report("warm memo, nothing changed", seconds)
        assert warm.as_json() == expected.as_json()
        assert set(memo.hits) == {p.name for p in PARTS} and not memo.misses

        times = []
        for i in range(args.repeat):
            d = changed(i)
            memo = Memo(directory)
            t0 = time.perf_counter()
            out = compute(d, memo=memo)
            times.append(time.perf_counter() - t0)
            assert memo.hits == ["predictive"] and memo.misses == ["cx_impact"], memo
        report("warm memo, one Surveys row changed", min(times))
        print(f"  = {min(times) / cold:.2f}x the cold compute")
        assert out.as_json() == compute(d).as_json()

    enc = _encode_ids(data)
    axis = _axis(enc, enc.settings["granularity"])
    assert axis is not None
    for part in PARTS:
        seconds, _ = best(lambda part=part: part_key(part, enc, axis), args.repeat)
        digests = "with digests" if args.digests else "no digests"
        report(f"key of {part.name} ({digests})", seconds)


if __name__ == "__main__":
    main()
