"""The KPI Summary's formulas: native Excel formulas over the input Tables.

Every formula uses only functions that Excel, LibreOffice 7.4 and openpyxl all handle
(SUMIFS, COUNTIFS, AVERAGEIFS, SUMPRODUCT, INDEX, EOMONTH, EDATE, IFERROR) with structured
references such as ``Surveys[score]``. KPIs that need each customer's MRR month over month
read the ``Calc`` helper Table: one row per row of the Customers Table.

A formula gives ``""`` (a blank cell) wherever the engine gives NaN: no data, a zero
denominator, or the first month with MRR data (which has no previous month).

The month is the named cell ``summary_period`` (blank: the latest month with data); the
helper names ``period_start``, ``period_end``, ``prev_start`` and ``prev_end`` hold its
bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

CALC = "Calc"
CALC_SHEET = "Calc"

# The helper Table's columns: name -> formula for row r (A column holds the row number n).
# Customers' blank churn_date must stay blank: INDEX of an empty cell gives 0.
CALC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "{n}"),
    ("customer_id", 'IFERROR(INDEX(Customers[customer_id],A{r})&"","")'),
    ("signup", 'IF(B{r}="","",INDEX(Customers[signup_date],A{r}))'),
    ("churn", 'IF(B{r}="","",IF(INDEX(Customers[churn_date],A{r})="","",INDEX(Customers[churn_date],A{r})))'),
    ("cur", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],">="&period_start,MRR[month],"<="&period_end))'),
    ("prev", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],">="&prev_start,MRR[month],"<="&prev_end))'),
    ("before", 'IF(B{r}="",0,SUMIFS(MRR[mrr],MRR[customer_id],B{r},MRR[month],"<"&prev_start))'),
    ("mrr_rows", 'IF(B{r}="",0,COUNTIFS(MRR[customer_id],B{r}))'),
    ("by_dates", 'IF(B{r}="",0,IF(OR(D{r}<>"",H{r}=0),1,0))'),
    ("active_start", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=prev_end,OR(D{r}="",D{r}>prev_end)),1,0),IF(F{r}>0,1,0)))'),
    ("active_end", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=period_end,OR(D{r}="",D{r}>period_end)),1,0),IF(E{r}>0,1,0)))'),
    ("touched", 'IF(B{r}="",0,IF(I{r}=1,IF(AND(C{r}<=period_end,OR(D{r}="",D{r}>=period_start)),1,0),K{r}))'),
)  # fmt: skip

# Named helper cells (on the Calc sheet, above the Table): name -> formula.
HELPER_NAMES: tuple[tuple[str, str], ...] = (
    ("shown_month", 'IF(summary_period="",IF(COUNT(MRR[month])>0,MAX(MRR[month]),MAX(MAX(Surveys[response_date]),MAX(Orders[order_date]),MAX(Tickets[opened_date]),MAX(Usage[activity_date]),MAX(Funnel[month]),MAX(Costs[month]))),summary_period)'),
    ("period_start", "DATE(YEAR(shown_month),MONTH(shown_month),1)"),
    ("period_end", "EOMONTH(shown_month,0)"),
    ("prev_start", "EDATE(period_start,-1)"),
    ("prev_end", "period_start-1"),
    ("first_mrr_month", 'IF(COUNT(MRR[month])=0,"",DATE(YEAR(MIN(MRR[month])),MONTH(MIN(MRR[month])),1))'),
    ("no_movements", 'IF(first_mrr_month="",1,IF(period_start<=first_mrr_month,1,0))'),
    ("cust_start", "SUM(Calc[active_start])"),
    ("cust_end", "SUM(Calc[active_end])"),
    ("cust_lost", "SUMPRODUCT(Calc[active_start]*(1-Calc[active_end]))"),
    ("cust_new", "SUMPRODUCT(Calc[active_end]*(1-Calc[active_start]))"),
    ("cust_joined_left", "SUMPRODUCT(Calc[touched]*(1-Calc[active_start])*(1-Calc[active_end]))"),
    ("cohort_start_mrr", "SUMPRODUCT((Calc[prev]>0)*Calc[prev])"),
    ("signups", 'COUNTIFS(Customers[signup_date],">="&period_start,Customers[signup_date],"<="&period_end)'),
)  # fmt: skip

IN_MONTH = '{col},">="&period_start,{col},"<="&period_end'


def _in_month(col: str) -> str:
    return IN_MONTH.format(col=col)


def _blank_if(condition: str, value: str) -> str:
    return f'IF({condition},"",{value})'


NPS_N = f'COUNTIFS(Surveys[survey],"NPS",{_in_month("Surveys[response_date]")})'
CSAT_N = f'COUNTIFS(Surveys[survey],"CSAT",{_in_month("Surveys[response_date]")})'
CES_N = f'COUNTIFS(Surveys[survey],"CES",{_in_month("Surveys[response_date]")})'
RESOLVED_N = f"COUNTIFS({_in_month('Tickets[resolved_date]')})"
VISITORS = f"SUMIFS(Funnel[visitors],{_in_month('Funnel[month]')})"
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


SUMMARY: tuple[SummaryFormula, ...] = (
    SummaryFormula(
        "mrr",
        _blank_if("COUNT(MRR[mrr])=0", f"SUMIFS(MRR[mrr],{_in_month('MRR[month]')})"),
        _blank_if("COUNT(MRR[mrr])=0", f"SUMIFS(MRR[mrr],{_in_month('MRR[month]')})"),
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
        _blank_if(f"{NPS_N}=0", f'(COUNTIFS(Surveys[survey],"NPS",Surveys[score],">="&9,{_in_month("Surveys[response_date]")})-COUNTIFS(Surveys[survey],"NPS",Surveys[score],"<="&6,{_in_month("Surveys[response_date]")}))/{NPS_N}*100'),
        'CX_NPS(IF((Surveys[survey]="NPS")*(Surveys[response_date]>=period_start)*(Surveys[response_date]<=period_end),Surveys[score],""))',
    ),
    SummaryFormula(
        "csat",
        _blank_if(f"{CSAT_N}=0", f'COUNTIFS(Surveys[survey],"CSAT",Surveys[score],">="&csat_threshold,{_in_month("Surveys[response_date]")})/{CSAT_N}'),
        'CX_CSAT(IF((Surveys[survey]="CSAT")*(Surveys[response_date]>=period_start)*(Surveys[response_date]<=period_end),Surveys[score],""),csat_scale,csat_threshold)',
    ),
    SummaryFormula(
        "ces",
        _blank_if(f"{CES_N}=0", f'AVERAGEIFS(Surveys[score],Surveys[survey],"CES",{_in_month("Surveys[response_date]")})'),
        'CX_CES(IF((Surveys[survey]="CES")*(Surveys[response_date]>=period_start)*(Surveys[response_date]<=period_end),Surveys[score],""),ces_scale)',
    ),
    SummaryFormula(
        "first_contact_resolution_rate",
        _blank_if(f"{RESOLVED_N}=0", f"COUNTIFS(Tickets[contacts],1,{_in_month('Tickets[resolved_date]')})/{RESOLVED_N}"),
        f"CX_FCR(COUNTIFS(Tickets[contacts],1,{_in_month('Tickets[resolved_date]')}),{RESOLVED_N})",
    ),
    SummaryFormula(
        "conversion_rate",
        _blank_if(f"{VISITORS}=0", f"SUMIFS(Funnel[conversions],{_in_month('Funnel[month]')})/{VISITORS}"),
        f"CX_CONVERSION(SUMIFS(Funnel[conversions],{_in_month('Funnel[month]')}),{VISITORS})",
    ),
    SummaryFormula(
        "cac",
        _blank_if("OR(COUNT(Costs[acquisition_cost])=0,signups=0)", f"SUMIFS(Costs[acquisition_cost],{_in_month('Costs[month]')})/signups"),
        _blank_if("COUNT(Costs[acquisition_cost])=0", f"CX_CAC(SUMIFS(Costs[acquisition_cost],{_in_month('Costs[month]')}),signups)"),
    ),
)  # fmt: skip
"""The KPI Summary: one formula per headline KPI, native and with the CX_ functions."""
