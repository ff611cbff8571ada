"""KPIs from a folder of Parquet files: ``compute(read(FOLDER))`` with breakdowns (the
Parquet source of cxkpi_xl/data/sources.py, DuckDB embedded) against DuckDB alone running
the same aggregations (MRR and its movements per month, NPS and CSAT per month, DAU/MAU,
product usage, MRR and NPS by segment) on the same files, each in a fresh process: seconds,
peak RSS and the ratio.

The data are generated with DuckDB into benchmarks/.cache/sources-SCALE/ (kept): at scale
1, 1,000,000 customers with up to 36 months of MRR each, 50,000,000 usage events and
5,000,000 survey answers. Targets at scale 1 on the 2-core machine: <= 60 s, <= 4 GB peak,
<= 1.5x DuckDB alone.

    python benchmarks/sources.py [--scale 0.01] [--rebuild] [--no-impact]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import run_code

CACHE = Path(__file__).resolve().parent / ".cache"

GENERATE = """
import duckdb
n, events, answers, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
con = duckdb.connect()
con.execute("SET threads TO 2")
def copy(name, sql):
    con.execute(f"COPY ({sql}) TO '{out}/{name}.parquet' (FORMAT parquet)")
copy("Customers", f'''
  SELECT 'C' || lpad(i::VARCHAR, 7, '0') AS customer_id,
         ['SMB', 'Mid-market', 'Enterprise'][1 + i % 3] AS segment,
         'Owner ' || (i % 40)::VARCHAR AS owner,
         DATE '2023-01-01' + (((hash(i) % 1000)::BIGINT)::INT - 60) AS signup_date,
         CASE WHEN (hash(i * 7) % 5)::BIGINT = 0
              THEN DATE '2023-01-01' + (((hash(i) % 1000)::BIGINT)::INT - 60)
                   + (60 + (hash(i * 3) % 600)::BIGINT)::INT END AS churn_date
  FROM range({n}) t(i)''')
copy("MRR", f'''
  SELECT c.customer_id, (DATE '2023-01-01' + INTERVAL (m) MONTH)::DATE AS month,
         (50 + (hash(c.customer_id) % 450)::BIGINT + CASE WHEN m > 18 THEN 10 ELSE 0 END)::DOUBLE AS mrr
  FROM '{out}/Customers.parquet' c, range(36) r(m)
  WHERE (DATE '2023-01-01' + INTERVAL (m) MONTH) >= date_trunc('month', c.signup_date)
    AND (c.churn_date IS NULL OR (DATE '2023-01-01' + INTERVAL (m) MONTH) < date_trunc('month', c.churn_date))''')
copy("Usage", f'''
  SELECT DATE '2023-01-01' + ((hash(i) % 1095)::BIGINT)::INT AS activity_date,
         'U' || (((hash(i * 11) % {n})::BIGINT) * 3 + i % 3)::VARCHAR AS user_id,
         'C' || lpad(((hash(i * 11) % {n})::BIGINT)::VARCHAR, 7, '0') AS customer_id,
         ['reports', 'alerts', 'export', 'api', 'sso'][1 + (hash(i * 13) % 5)::BIGINT] AS feature
  FROM range({events}) t(i)''')
copy("Surveys", f'''
  SELECT 'R' || i::VARCHAR AS response_id,
         'C' || lpad(((hash(i * 17) % {n})::BIGINT)::VARCHAR, 7, '0') AS customer_id,
         DATE '2023-01-01' + ((hash(i * 19) % 1095)::BIGINT)::INT AS response_date,
         CASE WHEN i % 4 = 0 THEN 'CSAT' ELSE 'NPS' END AS survey,
         (CASE WHEN i % 4 = 0 THEN 1 + (hash(i * 23) % 5)::BIGINT ELSE (hash(i * 23) % 11)::BIGINT END)::DOUBLE AS score
  FROM range({answers}) t(i)''')
"""

CXKPI = """
from cxkpi_xl.data.reader import read
from cxkpi_xl.engine import compute
t = time.perf_counter()
data = read(sys.argv[1])
extra['read_s'] = time.perf_counter() - t
extra['rows_in_python'] = int(sum(len(f) for f in data.tables.values()))
t = time.perf_counter()
report = compute(data, breakdowns=True, impact=sys.argv[2] == 'impact')
extra['compute_s'] = time.perf_counter() - t
extra['periods'] = len(report.periods)
extra['issues'] = len(report.issues)
"""

DUCKDB_ALONE = """
import duckdb
d = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads TO 2")
q = {}
q['mrr'] = f'''
  WITH m AS (SELECT customer_id, month, sum(mrr) AS mrr FROM '{d}/MRR.parquet' GROUP BY ALL),
  l AS (SELECT *, lag(mrr) OVER (PARTITION BY customer_id ORDER BY month) AS prev,
               lag(month) OVER (PARTITION BY customer_id ORDER BY month) AS prev_month FROM m)
  SELECT month, sum(mrr) AS mrr, count(*) AS customers,
         sum(CASE WHEN prev IS NULL THEN mrr ELSE 0 END) AS new_mrr,
         sum(CASE WHEN prev < mrr THEN mrr - prev ELSE 0 END) AS expansion,
         sum(CASE WHEN prev > mrr THEN prev - mrr ELSE 0 END) AS contraction
  FROM l GROUP BY month ORDER BY month'''
q['surveys'] = f'''
  SELECT date_trunc('month', response_date) AS month, survey, count(*) AS n,
         avg(CASE WHEN survey = 'NPS' AND score >= 9 THEN 100 WHEN survey = 'NPS' AND score <= 6 THEN -100
                  WHEN survey = 'NPS' THEN 0 END) AS nps,
         avg(CASE WHEN survey = 'CSAT' THEN (score >= 4)::INT END) AS csat
  FROM '{d}/Surveys.parquet' GROUP BY ALL ORDER BY ALL'''
q['stickiness'] = f'''
  WITH u AS (SELECT DISTINCT activity_date, user_id, customer_id, feature FROM '{d}/Usage.parquet'),
  dau AS (SELECT activity_date, count(DISTINCT user_id) AS dau FROM u GROUP BY ALL),
  mau AS (SELECT date_trunc('month', activity_date) AS month, count(DISTINCT user_id) AS mau,
                 count(DISTINCT customer_id) AS using_customers FROM u GROUP BY ALL),
  adoption AS (SELECT date_trunc('month', activity_date) AS month, feature,
                      count(DISTINCT customer_id) AS customers FROM u GROUP BY ALL)
  SELECT mau.month, avg(dau) / any_value(mau) AS stickiness, any_value(using_customers),
         (SELECT count(*) FROM adoption a WHERE a.month = mau.month) AS features
  FROM dau JOIN mau ON date_trunc('month', dau.activity_date) = mau.month GROUP BY ALL'''
q['by_segment'] = f'''
  SELECT c.segment, m.month, sum(m.mrr) AS mrr,
         (SELECT avg(CASE WHEN s.score >= 9 THEN 100 WHEN s.score <= 6 THEN -100 ELSE 0 END)
          FROM '{d}/Surveys.parquet' s JOIN '{d}/Customers.parquet' c2 USING (customer_id)
          WHERE s.survey = 'NPS' AND c2.segment = c.segment
            AND date_trunc('month', s.response_date) = m.month) AS nps
  FROM '{d}/MRR.parquet' m JOIN '{d}/Customers.parquet' c USING (customer_id) GROUP BY ALL'''
for name, sql in q.items():
    extra[name + '_rows'] = len(con.execute(sql).fetchdf())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-impact", action="store_true", help="leave out Does CX pay?")
    args = parser.parse_args()
    n, events, answers = (round(x * args.scale) for x in (1_000_000, 50_000_000, 5_000_000))
    folder = CACHE / f"sources-{args.scale:g}"
    if args.rebuild and folder.exists():
        shutil.rmtree(folder)
    if not folder.exists():
        folder.mkdir(parents=True)
        made = run_code(GENERATE, str(n), str(events), str(answers), str(folder))
        print(f"generated in {made['seconds']:.1f} s")
    size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(
        f"scale {args.scale:g}: {n:,} customers, up to 36 months of MRR, {events:,} usage "
        f"events, {answers:,} survey answers ({size:.0f} MiB of Parquet in {folder.name})"
    )
    alone = run_code(DUCKDB_ALONE, str(folder))
    ours = run_code(CXKPI, str(folder), "none" if args.no_impact else "impact")
    print(
        f"DuckDB alone, same aggregations   {alone['seconds']:7.1f} s  "
        f"peak {alone['peak_rss_mb']:6.0f} MB"
    )
    print(
        f"cxkpi read + compute (breakdowns{'' if args.no_impact else ', impact'})"
        f" {ours['seconds']:7.1f} s  peak {ours['peak_rss_mb']:6.0f} MB"
        f"  (read {ours['read_s']:.1f} s, compute {ours['compute_s']:.1f} s,"
        f" {ours['rows_in_python']:,} rows in Python, {ours['periods']} periods,"
        f" {ours['issues']} issues)"
    )
    print(
        f"ratio to DuckDB alone {ours['seconds'] / alone['seconds']:.1f}x"
        "  (targets at scale 1: <= 60 s, <= 4096 MB, <= 1.5x)"
    )


if __name__ == "__main__":
    main()
