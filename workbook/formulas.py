"""The KPI Summary's formulas: native Excel formulas over the input Tables.

Every formula uses only functions that Excel, LibreOffice 7.4 and openpyxl all handle
(SUMIFS, COUNTIFS, SUMPRODUCT, INDEX, MATCH, EOMONTH, EDATE, IFERROR, MAXIFS/MINIFS with
their ``_xlfn.`` prefix) with structured references such as ``Surveys[score]``. KPIs that
need each customer's MRR month over month read the ``Calc`` helper Table: one row per row
of the Customers Table.

The formulas apply the reader's validity rules (:mod:`cxkpi_xl.reader`), so that the
Summary and the Report of one workbook agree on dirty data too: a row the reader skips
counts nowhere here.

- MRR, Funnel, Costs, Tickets: a negative amount or count leaves its row out (``">=0"``
  criteria; Costs: a negative retention cost leaves the acquisition cost of its row out
  too); a blank or text amount, or a blank or text date, matches no criterion.
- Surveys: a score counts only if it is a whole number on its survey's scale (NPS 0..10,
  CSAT 1..csat_scale, CES 1..ces_scale): the formulas count each allowed answer with
  COUNTIFS (an array of the scale's values), so 11, 7.5, text and blanks count nowhere.
- Customers: a row with a blank id, a signup date that is not a date, or an id that an
  earlier row already has is left out (``Calc[customer_id]`` is blank); a churn date
  before the signup date is ignored.
- The start of the first month with MRR data: a customer who signed up before it and
  pays in it was active at its start (their earlier MRR is unknown, so that month's
  movements stay blank, but its churn and retention count them).
- Text in a number or date column (``1,200.50`` typed as text, a date pasted as text)
  cannot be read by formulas: such rows count nowhere here, while the reader may read
  them. The named cell ``unreadable_cells`` counts those cells and the Summary says so
  above its table. Duplicate ticket ids are not detected (the reader skips all but the
  first).

A formula gives ``""`` (a blank cell) wherever the engine gives NaN: no data, a zero
denominator, or the first month with MRR data (which has no previous month).

The month is the named cell ``summary_period`` (blank: the latest month with data); the
helper names ``period_start``, ``next_start`` (the first day after the month),
``prev_start`` and ``shown_month`` hold its bounds. Months are half-open, so a date with
a time on the month's last day still belongs to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxkpi_xl.data.schema import DATE, MONTH, NUMBER, TABLES_BY_NAME

CALC = "Calc"
CALC_SHEET = "Calc"

VALID_MRR = 'MRR[mrr],">=0",MRR[month],">0",MRR[customer_id],"<>"'
"""COUNTIFS/SUMIFS criteria of an MRR row the reader keeps."""

# The helper Table's columns: name -> formula for row r (A column holds the row number n).
# Customers' blank churn_date must stay blank: INDEX of an empty cell gives 0.
CALC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "{n}"),
    ("customer_id", 'IFERROR(IF(AND(INDEX(Customers[customer_id],A{r})&""<>"",ISNUMBER(INDEX(Customers[signup_date],A{r})),MATCH(INDEX(Customers[customer_id],A{r}),Customers[customer_id],0)=A{r}),INDEX(Customers[customer_id],A{r})&"",""),"")'),
    ("signup", 'IF(B{r}="","",INDEX(Customers[signup_date],A{r}))'),
    ("churn", 'IF(B{r}="","",IF(ISNUMBER(INDEX(Customers[churn_date],A{r})),IF(INDEX(Customers[churn_date],A{r})<C{r},"",INDEX(Customers[churn_date],A{r})),""))'),
    ("cur", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],">="&period_start,MRR[month],"<"&next_start,MRR[mrr],">=0"))'),
    ("prev", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],">="&prev_start,MRR[month],"<"&period_start,MRR[mrr],">=0"))'),
    ("before", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],">0",MRR[month],"<"&prev_start,MRR[mrr],">=0"))'),
    ("mrr_rows", 'IF(B{r}="",0,COUNTIFS(MRR[customer_id],B{r},MRR[mrr],">=0",MRR[month],">0"))'),
    ("by_dates", 'IF(B{r}="",0,IF(OR(D{r}<>"",H{r}=0),1,0))'),
    ("active_start", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=prev_end,OR(D{r}="",D{r}>prev_end)),1,0),IF(OR(F{r}>0,AND(period_start=first_mrr_month,E{r}>0,C{r}<period_start)),1,0)))'),
    ("active_end", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=period_end,OR(D{r}="",D{r}>period_end)),1,0),IF(E{r}>0,1,0)))'),
    ("touched", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=period_end,OR(D{r}="",D{r}>=period_start)),1,0),K{r}))'),
)  # fmt: skip

SUMMARY_TABLES = ("Customers", "MRR", "Surveys", "Tickets", "Funnel", "Costs")
"""The input Tables the Summary reads."""


def _unreadable() -> str:
    """Cells of the Summary's number and date columns that hold something other than a
    number (text, TRUE/FALSE): COUNTA counts them, COUNT does not."""
    parts = [
        f"COUNTA({t}[{c.name}])-COUNT({t}[{c.name}])"
        for t in SUMMARY_TABLES
        for c in TABLES_BY_NAME[t].columns
        if c.type in (NUMBER, DATE, MONTH)
    ]
    return "+".join(parts)


OTHER_DATES = "MAX(Surveys[response_date]),MAX(Orders[order_date]),MAX(Tickets[opened_date]),MAX(Usage[activity_date]),MAX(Funnel[month]),MAX(Costs[month])"

# Named helper cells (on the Calc sheet, above the Table): name -> formula.
HELPER_NAMES: tuple[tuple[str, str], ...] = (
    ("has_mrr", f"IF(COUNTIFS({VALID_MRR})>0,1,0)"),
    ("shown_month", f'IF(summary_period="",IF(has_mrr=1,_xlfn.MAXIFS(MRR[month],{VALID_MRR}),MAX({OTHER_DATES})),summary_period)'),
    ("has_month", "IF(shown_month>0,1,0)"),
    ("period_start", "DATE(YEAR(shown_month),MONTH(shown_month),1)"),
    ("period_end", "EOMONTH(shown_month,0)"),
    ("next_start", "period_end+1"),
    ("prev_start", "EDATE(period_start,-1)"),
    ("prev_end", "period_start-1"),
    ("first_mrr_month", f'IF(has_mrr=0,"",DATE(YEAR(_xlfn.MINIFS(MRR[month],{VALID_MRR})),MONTH(_xlfn.MINIFS(MRR[month],{VALID_MRR})),1))'),
    ("no_movements", 'IF(first_mrr_month="",1,IF(period_start<=first_mrr_month,1,0))'),
    ("cust_start", "SUM(Calc[active_start])"),
    ("cust_end", "SUM(Calc[active_end])"),
    ("cust_lost", "SUMPRODUCT(Calc[active_start]*(1-Calc[active_end]))"),
    ("cust_new", "SUMPRODUCT(Calc[active_end]*(1-Calc[active_start]))"),
    ("cust_joined_left", "SUMPRODUCT(Calc[touched]*(1-Calc[active_start])*(1-Calc[active_end]))"),
    ("cohort_start_mrr", "SUMPRODUCT((Calc[prev]>0)*Calc[prev])"),
    ("signups", 'COUNTIFS(Calc[signup],">="&period_start,Calc[signup],"<"&next_start)'),
    ("mrr_outside_calc", f'IF(has_mrr=0,0,ROUND(SUMIFS(MRR[mrr],MRR[month],">="&prev_start,MRR[month],"<"&next_start,{VALID_MRR})-SUM(Calc[cur])-SUM(Calc[prev]),6))'),
    ("unreadable_cells", _unreadable()),
)  # fmt: skip

IN_MONTH = '{col},">="&period_start,{col},"<"&next_start'

NPS_VALUES = "{" + ",".join(str(v) for v in range(11)) + "}"
SCALE_VALUES = "{" + ",".join(str(v) for v in range(1, 101)) + "}"
"""The answers a CSAT or CES scale can have (the settings allow scales up to 100)."""


def _in_month(col: str) -> str:
    return IN_MONTH.format(col=col)


def _blank_if(condition: str, value: str) -> str:
    return f'IF({condition},"",{value})'


def _answers(survey: str, values: str, weights: str = "") -> str:
    """How many valid answers of a survey in the month have one of ``values`` (an array
    constant), each counted with ``weights`` (a factor over the same values)."""
    counts = f'COUNTIFS(Surveys[survey],"{survey}",Surveys[score],{values},{_in_month("Surveys[response_date]")})'
    return f"SUMPRODUCT({counts}{weights})"


NPS_N = _answers("NPS", NPS_VALUES)
NPS_PROMOTERS = _answers("NPS", "{9,10}")
NPS_DETRACTORS = _answers("NPS", "{0,1,2,3,4,5,6}")
CSAT_N = _answers("CSAT", SCALE_VALUES, f"*({SCALE_VALUES}<=csat_scale)")
CSAT_SATISFIED = _answers(
    "CSAT", SCALE_VALUES, f"*({SCALE_VALUES}<=csat_scale)*({SCALE_VALUES}>=csat_threshold)"
)
CES_N = _answers("CES", SCALE_VALUES, f"*({SCALE_VALUES}<=ces_scale)")
CES_SUM = _answers("CES", SCALE_VALUES, f"*({SCALE_VALUES}<=ces_scale)*{SCALE_VALUES}")
VALID_TICKET = 'Tickets[ticket_id],"<>",Tickets[opened_date],">0",Tickets[contacts],">=0"'
RESOLVED_N = f"COUNTIFS({VALID_TICKET},{_in_month('Tickets[resolved_date]')})"
RESOLVED_FIRST = (
    f"COUNTIFS({VALID_TICKET},Tickets[contacts],1,{_in_month('Tickets[resolved_date]')})"
)
VALID_FUNNEL = 'Funnel[visitors],">=0",Funnel[conversions],">=0"'
VISITORS = f"SUMIFS(Funnel[visitors],{_in_month('Funnel[month]')},{VALID_FUNNEL})"
CONVERSIONS = f"SUMIFS(Funnel[conversions],{_in_month('Funnel[month]')},{VALID_FUNNEL})"
ACQUISITION = (
    f'(SUMIFS(Costs[acquisition_cost],{_in_month("Costs[month]")},Costs[acquisition_cost],">=0")'
    f'-SUMIFS(Costs[acquisition_cost],{_in_month("Costs[month]")},Costs[acquisition_cost],">=0",Costs[retention_cost],"<0"))'
)
HAS_ACQUISITION = 'COUNTIFS(Costs[acquisition_cost],">=0",Costs[month],">0")'
MRR_TOTAL = f"SUMIFS(MRR[mrr],{_in_month('MRR[month]')},{VALID_MRR})"
MOVEMENT = {
    "mrr_new": "SUMPRODUCT((Calc[prev]=0)*(Calc[cur]>0)*(Calc[before]=0)*Calc[cur])",
    "mrr_reactivation": "SUMPRODUCT((Calc[prev]=0)*(Calc[cur]>0)*(Calc[before]>0)*Calc[cur])",
    "mrr_expansion": "SUMPRODUCT((Calc[prev]>0)*(Calc[cur]>Calc[prev])*(Calc[cur]-Calc[prev]))",
    "mrr_contraction": "SUMPRODUCT((Calc[cur]>0)*(Calc[cur]<Calc[prev])*(Calc[prev]-Calc[cur]))",
    "mrr_churn": "SUMPRODUCT((Calc[prev]>0)*(Calc[cur]=0)*Calc[prev])",
}
CHURN_DENOMINATOR = 'IF(churn_convention="stripe",cust_start+cust_new+cust_joined_left,cust_start)'
CHURN_NUMERATOR = 'cust_lost+IF(churn_convention="start",0,cust_joined_left)'


@dataclass(frozen=True)
class SummaryFormula:
    kpi_id: str
    native: str
    udf: str


def _movement(name: str) -> str:
    return _blank_if("no_movements=1", MOVEMENT[name])


IN_MONTH_ARRAY = "(Surveys[response_date]>=period_start)*(Surveys[response_date]<next_start)"

SUMMARY: tuple[SummaryFormula, ...] = (
    SummaryFormula(
        "mrr",
        _blank_if("has_mrr=0", MRR_TOTAL),
        _blank_if("has_mrr=0", MRR_TOTAL),
    ),
    *(SummaryFormula(m, _movement(m), _movement(m)) for m in MOVEMENT),
    SummaryFormula(
        "net_new_mrr",
        _blank_if("no_movements=1", "kpi_mrr_new+kpi_mrr_reactivation+kpi_mrr_expansion-kpi_mrr_contraction-kpi_mrr_churn"),
        _blank_if("no_movements=1", "kpi_mrr_new+kpi_mrr_reactivation+kpi_mrr_expansion-kpi_mrr_contraction-kpi_mrr_churn"),
    ),
    SummaryFormula(
        "arpu",
        _blank_if('OR(kpi_mrr="",COUNTIF(Calc[cur],">0")=0)', 'kpi_mrr/COUNTIF(Calc[cur],">0")'),
        _blank_if('kpi_mrr=""', 'CX_ARPU(kpi_mrr,COUNTIF(Calc[cur],">0"))'),
    ),
    SummaryFormula(
        "net_revenue_retention",
        _blank_if("OR(no_movements=1,cohort_start_mrr=0)", "SUMPRODUCT((Calc[prev]>0)*Calc[cur])/cohort_start_mrr"),
        _blank_if("no_movements=1", "CX_NRR(cohort_start_mrr,SUMPRODUCT((Calc[prev]>0)*(Calc[cur]>Calc[prev])*(Calc[cur]-Calc[prev])),SUMPRODUCT((Calc[prev]>0)*(Calc[cur]>0)*(Calc[cur]<Calc[prev])*(Calc[prev]-Calc[cur])),SUMPRODUCT((Calc[prev]>0)*(Calc[cur]=0)*Calc[prev]))"),
    ),
    SummaryFormula(
        "gross_revenue_retention",
        _blank_if("OR(no_movements=1,cohort_start_mrr=0)", "SUMPRODUCT((Calc[prev]>0)*((Calc[cur]<Calc[prev])*Calc[cur]+(Calc[cur]>=Calc[prev])*Calc[prev]))/cohort_start_mrr"),
        _blank_if("no_movements=1", "CX_GRR(cohort_start_mrr,SUMPRODUCT((Calc[prev]>0)*(Calc[cur]>0)*(Calc[cur]<Calc[prev])*(Calc[prev]-Calc[cur])),SUMPRODUCT((Calc[prev]>0)*(Calc[cur]=0)*Calc[prev]))"),
    ),
    SummaryFormula(
        "customer_churn_rate",
        _blank_if(f"({CHURN_DENOMINATOR})=0", f"({CHURN_NUMERATOR})/({CHURN_DENOMINATOR})"),
        f"CX_CHURN({CHURN_DENOMINATOR},{CHURN_NUMERATOR})",
    ),
    SummaryFormula(
        "customer_retention_rate",
        _blank_if("cust_start=0", "(cust_end-cust_new)/cust_start"),
        "CX_CRR(cust_start,cust_end,cust_new)",
    ),
    SummaryFormula(
        "nps",
        _blank_if(f"{NPS_N}=0", f"({NPS_PROMOTERS}-{NPS_DETRACTORS})/{NPS_N}*100"),
        f'CX_NPS(IF((Surveys[survey]="NPS")*{IN_MONTH_ARRAY},Surveys[score],""))',
    ),
    SummaryFormula(
        "csat",
        _blank_if(f"{CSAT_N}=0", f"{CSAT_SATISFIED}/{CSAT_N}"),
        f'CX_CSAT(IF((Surveys[survey]="CSAT")*{IN_MONTH_ARRAY},Surveys[score],""),csat_scale,csat_threshold)',
    ),
    SummaryFormula(
        "ces",
        _blank_if(f"{CES_N}=0", f"{CES_SUM}/{CES_N}"),
        f'CX_CES(IF((Surveys[survey]="CES")*{IN_MONTH_ARRAY},Surveys[score],""),ces_scale)',
    ),
    SummaryFormula(
        "first_contact_resolution_rate",
        _blank_if(f"{RESOLVED_N}=0", f"{RESOLVED_FIRST}/{RESOLVED_N}"),
        f"CX_FCR({RESOLVED_FIRST},{RESOLVED_N})",
    ),
    SummaryFormula(
        "conversion_rate",
        _blank_if(f"{VISITORS}=0", f"{CONVERSIONS}/{VISITORS}"),
        f"CX_CONVERSION({CONVERSIONS},{VISITORS})",
    ),
    SummaryFormula(
        "cac",
        _blank_if(f"OR({HAS_ACQUISITION}=0,signups=0)", f"{ACQUISITION}/signups"),
        _blank_if(f"{HAS_ACQUISITION}=0", f"CX_CAC({ACQUISITION},signups)"),
    ),
)  # fmt: skip
"""The KPI Summary: one formula per headline KPI, native and with the CX_ functions (the
CX_ functions check the survey answers themselves: an answer off its scale is an error in
the cell, not left out)."""
