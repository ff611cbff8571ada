"""The input schema: the tables, their columns and types, the validation rules and the
settings, defined once.

The reader validates against it, the engine reads its settings from it, and the template
generator builds its sheets, Tables, validations and named cells from it. Column names
are lower case; the reader matches headers ignoring case, spaces, underscores and
hyphens, and ignores extra columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ID, TEXT, DATE, MONTH, NUMBER, YESNO = "id", "text", "date", "month", "number", "yesno"
COLUMN_TYPES = (ID, TEXT, DATE, MONTH, NUMBER, YESNO)

YES_VALUES = frozenset({"yes", "y", "true", "1", "1.0", "x"})
NO_VALUES = frozenset({"no", "n", "false", "0", "0.0", ""})

SURVEY_TYPES = ("NPS", "CSAT", "CES", "STAR")
ORDER_CATEGORIES = ("primary", "secondary")
INVOICE_KINDS = ("subscription", "credit", "one_time", "usage")


@dataclass(frozen=True)
class Column:
    """One input column. ``low`` is the smallest allowed number (0 for money and counts)."""

    name: str
    type: str
    required: bool = False
    description: str = ""
    low: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"{self.name}: unknown column type {self.type!r}")


@dataclass(frozen=True)
class Table:
    """One input sheet holding one Excel Table of the same name."""

    name: str
    columns: tuple[Column, ...]
    feeds: str
    key: str | None = None
    """A column whose values must be unique (a duplicate row is skipped)."""
    customer_column: str | None = "customer_id"
    """The column that links a row to a customer, if any."""

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: str, required: bool = False, description: str = "", **kw: Any) -> Column:
    return Column(name, type_, required, description, **kw)


TABLES: tuple[Table, ...] = (
    Table(
        "Customers",
        (
            _c("customer_id", ID, True, "Your customer or account id"),
            _c("customer_name", TEXT, False, "Name"),
            _c("segment", TEXT, False, "Segment, e.g. SMB, Mid-market, Enterprise"),
            _c("owner", TEXT, False, "Account owner or customer success rep"),
            _c("signup_date", DATE, True, "Date the customer signed up"),
            _c("churn_date", DATE, False, "Date the customer left; blank while active"),
            _c("churn_reason", TEXT, False, "Why the customer left"),
            _c("first_value_date", DATE, False, "Date the customer first got value"),
            _c("referred_by", ID, False, "customer_id of the customer who referred this one"),
            _c("reference_willing", YESNO, False, "Willing to be a reference: Yes or No"),
        ),
        "customer counts, churn, CRR, CAC, time to value, references, referrals, breakdowns",
        key="customer_id",
    ),
    Table(
        "MRR",
        (
            _c("customer_id", ID, True, "customer_id"),
            _c("month", MONTH, True, "Any date in the month"),
            _c("mrr", NUMBER, True, "Normalised monthly recurring revenue", low=0),
        ),
        "MRR, movements, NRR, GRR, ARPU, quick ratio, expansion",
    ),
    Table(
        "Orders",
        (
            _c("order_id", ID, True, "Order id"),
            _c("customer_id", ID, True, "customer_id"),
            _c("order_date", DATE, True, "Order date"),
            _c("amount", NUMBER, True, "Order amount", low=0),
            _c("product", TEXT, False, "Product"),
            _c("category", TEXT, False, "primary or secondary (add-on)", choices=ORDER_CATEGORIES),
            _c("quantity", NUMBER, False, "Units; blank counts as 1", low=0),
        ),
        "revenue, CLTV, repeat purchase, attachment rate, predictive CLV",
        key="order_id",
    ),
    Table(
        "Surveys",
        (
            _c("response_id", ID, False, "Response id"),
            _c("customer_id", ID, False, "customer_id of the respondent"),
            _c("response_date", DATE, True, "Date of the answer"),
            _c("survey", TEXT, True, "NPS, CSAT, CES or STAR", choices=SURVEY_TYPES),
            _c("score", NUMBER, True, "The answer on the survey's scale"),
            _c("comment", TEXT, False, "Free-text comment"),
        ),
        "NPS, CSAT, CES, star rating, feedback themes, CX to revenue",
    ),
    Table(
        "Tickets",
        (
            _c("ticket_id", ID, True, "Ticket id"),
            _c("customer_id", ID, False, "customer_id"),
            _c("opened_date", DATE, True, "Date opened"),
            _c("resolved_date", DATE, False, "Date resolved; blank while open"),
            _c("contacts", NUMBER, True, "Customer contacts needed", low=0),
            _c("agent", TEXT, False, "Agent"),
        ),
        "first contact resolution",
        key="ticket_id",
    ),
    Table(
        "Usage",
        (
            _c("activity_date", DATE, True, "Day of the activity"),
            _c("user_id", ID, True, "User id"),
            _c("customer_id", ID, False, "customer_id of the user's account"),
            _c("feature", TEXT, False, "Feature used"),
        ),
        "stickiness, product usage rate, feature adoption",
    ),
    Table(
        "Health",
        (
            _c("customer_id", ID, True, "customer_id"),
            _c("month", MONTH, True, "Any date in the month"),
            _c("measure", TEXT, True, "Measure name, as in HealthWeights"),
            _c("score", NUMBER, True, "Measure score 0-100", low=0),
        ),
        "health score, at-risk rate",
    ),
    Table(
        "Funnel",
        (
            _c("month", MONTH, True, "Any date in the month"),
            _c("visitors", NUMBER, True, "Visitors", low=0),
            _c("conversions", NUMBER, True, "Conversions", low=0),
        ),
        "conversion rate",
        customer_column=None,
    ),
    Table(
        "Costs",
        (
            _c("month", MONTH, True, "Any date in the month"),
            _c("acquisition_cost", NUMBER, False, "Sales and marketing spend", low=0),
            _c("retention_cost", NUMBER, False, "Customer success and retention spend", low=0),
        ),
        "CAC, LTV:CAC, payback, retention cost",
        customer_column=None,
    ),
    Table(
        "Invoices",
        (
            _c("invoice_id", ID, True, "Invoice id"),
            _c("customer_id", ID, True, "customer_id"),
            _c("invoice_date", DATE, False, "Date of the invoice"),
            _c("line_id", ID, False, "Line id, unique within the invoice"),
            _c(
                "kind", TEXT, True, "subscription, credit, one_time or usage", choices=INVOICE_KINDS
            ),
            _c("service_start", DATE, True, "First day of the service period"),
            _c(
                "service_end",
                DATE,
                True,
                "End of the service period, exclusive (a monthly line runs Jan 1 to Feb 1)",
            ),
            _c(
                "amount",
                NUMBER,
                True,
                "Charged for the line after discounts, tax included; negative for a credit",
            ),
            _c("tax", NUMBER, False, "The tax inside amount; blank is 0"),
            _c("currency", TEXT, False, "Currency code; blank is the report currency"),
            _c(
                "interval_months",
                NUMBER,
                False,
                "The plan's billing interval in months; blank: the service period in whole months",
                low=0,
            ),
            _c("prorated", YESNO, False, "Yes for a line billing part of an interval"),
            _c("subscription_id", ID, False, "Subscription id"),
            _c("plan", TEXT, False, "Plan name"),
            _c("quantity", NUMBER, False, "Seats or units", low=0),
        ),
        "MRR from invoices (when the MRR table is empty; mrr_source)",
        customer_column="customer_id",
    ),
    Table(
        "FX",
        (
            _c("month", MONTH, True, "Any date in the month"),
            _c("currency", TEXT, True, "Currency code"),
            _c("rate", NUMBER, True, "Report-currency units per unit of currency", low=0),
        ),
        "currency conversion of Invoices",
        customer_column=None,
    ),
    Table(
        "HealthWeights",
        (
            _c("measure", TEXT, True, "Measure name, as in Health"),
            _c("weight", NUMBER, True, "Weight of the measure", low=0),
        ),
        "health score weights (on the Settings sheet)",
        key="measure",
        customer_column=None,
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

CUSTOMER_ID_COLUMNS: tuple[tuple[str, str], ...] = (
    *((t.name, t.customer_column) for t in TABLES if t.customer_column is not None),
    ("Customers", "referred_by"),
)
"""Every (table, column) holding a customer id: each table's customer column, and the
referrer of a customer."""
SETTINGS_SHEET = "Settings"
TABLE_SHEETS: dict[str, str] = {t.name: t.name for t in TABLES} | {"HealthWeights": SETTINGS_SHEET}
"""The sheet each Table lives on (HealthWeights sits on the Settings sheet)."""

HEALTH_SCORE_MAX = 100.0
STAR_SCALE = 5
NPS_SCALE = 10


@dataclass(frozen=True)
class Setting:
    """One named cell of the Settings sheet."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    kind: str = "text"  # text, number, month
    low: float | None = None
    high: float | None = None
    aliases: tuple[tuple[str, str], ...] = ()
    """Other words for a choice, e.g. ``comma`` for ``,`` (a lone comma is awkward in a CSV)."""

    def parse(self, value: Any) -> Any:
        """A value from a cell, a CSV or ``--set`` as this setting's type; ValueError if
        it does not fit. A blank gives the default."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.default
        if self.kind == "number":
            from .cells import show_value

            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"setting {self.name}: {show_value(value)} is not a number"
                ) from None
            if (self.low is not None and number < self.low) or (
                self.high is not None and number > self.high
            ):
                raise ValueError(
                    f"setting {self.name}: {show_value(value)} is outside "
                    f"{self.low:g}..{self.high:g}"
                )
            return int(number) if number.is_integer() and self.name.endswith("scale") else number
        if self.kind == "month":
            from .periods import parse_month

            return parse_month(value, f"setting {self.name}")
        text = str(value).strip()
        if self.choices:
            lowered = dict(self.aliases).get(text.lower(), text).lower()
            for choice in self.choices:
                if choice.lower() == lowered:
                    return choice
            raise ValueError(
                f"setting {self.name}: {text!r} is not one of {', '.join(self.choices)}"
            )
        return text


SETTINGS: tuple[Setting, ...] = (
    Setting("granularity", "month", "Report periods: month, quarter or year",
            ("month", "quarter", "year")),
    Setting("report_start", None, "First month reported; blank: the first month with data",
            kind="month"),
    Setting("report_end", None, "Last month reported; blank: the last month with data",
            kind="month"),
    Setting("currency", "USD", "Currency of the amounts (display only)"),
    Setting("churn_convention", "start",
            "start: lost / active at start; include_new: also count customers who joined and "
            "left in the period; stripe: all lost / (start + new)",
            ("start", "include_new", "stripe")),
    Setting("csat_scale", 5, "Top of the CSAT scale", kind="number", low=2, high=100),
    Setting("csat_threshold", 4, "Lowest CSAT answer counted as satisfied", kind="number",
            low=1, high=100),
    Setting("ces_scale", 7, "CES scale: 7 (CES 2.0, higher is easier) or 5 (effort, lower "
            "is easier)", kind="number", low=2, high=100),
    Setting("health_red_below", 50, "Health scores below this are red (at risk)",
            kind="number", low=0, high=100),
    Setting("health_green_from", 75, "Health scores from this on are green", kind="number",
            low=0, high=100),
    Setting("gross_margin", 1, "Gross margin as a fraction, for subscription CLTV and payback",
            kind="number", low=0, high=1),
    Setting("decimal_separator", ".", "Decimal separator of numbers typed as text: . "
            "(1,200.50) or , (1.200,50); the other one groups thousands",
            (".", ","), aliases=(("dot", "."), ("point", "."), ("period", "."),
                                 ("comma", ","))),
    Setting("mrr_source", "auto", "Where MRR comes from: auto (the MRR table, or Invoices "
            "when the MRR table is empty), mrr_table or invoices",
            ("auto", "mrr_table", "invoices")),
    Setting("include_usage", "No", "Count usage (metered) invoice lines in MRR: Yes or No",
            ("Yes", "No"), aliases=(("y", "Yes"), ("true", "Yes"), ("n", "No"),
                                    ("false", "No"))),
    Setting("fx_rate", "line", "Rate for an Invoices line in another currency: line (its "
            "service_start month's, held for its period) or subscription (its subscription's "
            "first month's: rate moves never change MRR)", ("line", "subscription")),
    Setting("report_currency", None, "Currency that Invoices are converted to with the FX "
            "table; blank: the currency setting"),
    Setting("date_order", "auto", "Order of day and month in dates typed as text such as "
            "03/04/2026: auto (from the column's dates that fit only one order), DMY, MDY "
            "or YMD", ("auto", "DMY", "MDY", "YMD")),
    Setting("churn_hazard_strata", "segment", "Does CX pay?: segment (compare NPS categories "
            "within each segment, a baseline churn hazard per segment) or none",
            ("segment", "none")),
    Setting("source", None, "Where refresh reads the input tables: blank (this workbook), "
            "a folder of Parquet files, a DuckDB file or a connection URL such as "
            "postgres://host/db; never a password (credentials come from environment "
            "variables or the backend's own configuration)"),
    Setting("source_tables", None, "Where the source's tables are: a schema (cx.), a table "
            "name prefix (kpi_) or both (cx.kpi_); blank: the default schema, no prefix"),
)  # fmt: skip

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass
class Settings:
    """Resolved settings: defaults, then the workbook's values, then overrides."""

    values: dict[str, Any] = field(default_factory=lambda: {s.name: s.default for s in SETTINGS})

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def update(self, raw: dict[str, Any]) -> None:
        """Parse and apply ``name -> value`` pairs; ValueError for an unknown name or a
        value that does not fit."""
        for name, value in raw.items():
            key = str(name).strip().lower()
            if key not in SETTINGS_BY_NAME:
                raise ValueError(
                    f"unknown setting {name!r} (the README's Settings table lists them all)"
                )
            self.values[key] = SETTINGS_BY_NAME[key].parse(value)

    def survey_scale(self, survey: str) -> tuple[float, float]:
        """The allowed answers (low, high) of a survey type."""
        if survey == "NPS":
            return 0.0, float(NPS_SCALE)
        if survey == "CSAT":
            return 1.0, float(self.values["csat_scale"])
        if survey == "CES":
            return 1.0, float(self.values["ces_scale"])
        return 1.0, float(STAR_SCALE)


def markdown_tables() -> str:
    """The README's table of input tables and columns (required ones in bold)."""
    rows = ["| sheet / Table | columns (required in bold) | feeds |", "|---|---|---|"]
    for t in TABLES:
        cols = ", ".join(f"**{c.name}**" if c.required else c.name for c in t.columns)
        sheet = f"`{t.name}`" + (" (on Settings)" if TABLE_SHEETS[t.name] != t.name else "")
        rows.append(f"| {sheet} | {cols} | {t.feeds} |")
    return "\n".join(rows) + "\n"


def markdown_settings() -> str:
    """The README's table of settings."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        blank = {"report_start": "first month with data", "report_end": "last month with data"}
        default = blank.get(s.name, "(blank)") if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.name}` | {default} | {s.description} |")
    return "\n".join(rows) + "\n"
