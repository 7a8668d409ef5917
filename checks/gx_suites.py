"""The validity rules (Great Expectations suites) as plain data: one suite per source and one for
the indicator table.

Nothing here imports Great Expectations: `checks/gx_validation.py` turns each `Expect` into a
GX expectation when a check step runs, and `checks/gx_checks.py` makes each one its own Dagster
asset check, named `gx_<name>`. Names are stable (they are the check names people see in the UI
and in failure messages): add rules, but do not rename them.

Kinds of rule:

- `not_null`        the column has no null value
- `unique`          no two rows share the value(s) of `columns` (one column, or a compound key)
- `in_set`          every non-null value is one of `values`
- `between`         every non-null value is within [min_value, max_value] (None: open end);
                    `where` restricts the rule to rows whose column equals a value
- `not_future`      every non-null timestamp is at most the latest allowed time of the run: the
                    later of the end of the run's as-of day and the time of the check (so a past
                    snapshot re-scored from today's export still passes; a typo like 2062 does not)

Keys, timestamp columns and the columns themselves come from the landing contract
(`cs_assets/sources/schemas.py`); the allowed categories are the ones its comments list.
"""

from dataclasses import dataclass

import polars as pl

from cs_assets.indicators.compute import USAGE_COUNTS, ZERO_WHEN_ABSENT
from cs_assets.indicators.definitions import INDICATOR_COLUMNS
from cs_assets.sources.schemas import SOURCES, UTC_TS

NOT_NULL = "not_null"
UNIQUE = "unique"
IN_SET = "in_set"
BETWEEN = "between"
NOT_FUTURE = "not_future"
KINDS = (NOT_NULL, UNIQUE, IN_SET, BETWEEN, NOT_FUTURE)

INDICATORS = "account_indicators"


@dataclass(frozen=True)
class Expect:
    """One validity rule on one table; `name` is unique within its table."""

    name: str
    kind: str
    columns: tuple[str, ...]
    description: str
    values: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    where: tuple[str, str] | None = None  # (column, value): only rows where column == value

    @property
    def column(self) -> str:
        """The column the rule is about (the compound key joined with '+')."""
        return "+".join(self.columns)

    @property
    def needed_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.columns, *([self.where[0]] if self.where else [])]))


def not_null(column: str) -> Expect:
    return Expect(f"{column}_not_null", NOT_NULL, (column,), f"{column} is never null")


def unique(*columns: str, name: str | None = None, why: str = "") -> Expect:
    joined = ", ".join(columns)
    text = f"{joined} is unique" if len(columns) == 1 else f"no two rows share ({joined})"
    return Expect(name or f"{'_'.join(columns)}_unique", UNIQUE, tuple(columns), text + (f" ({why})" if why else ""))


def in_set(column: str, values: tuple[str, ...]) -> Expect:
    return Expect(f"{column}_allowed", IN_SET, (column,), f"{column} is one of {', '.join(values)}", values=values)


def _bounds_text(low: float | None, high: float | None) -> str:
    fmt = lambda v: f"{v:g}"  # noqa: E731
    if low is not None and high is not None:
        return f"between {fmt(low)} and {fmt(high)}"
    return f">= {fmt(low)}" if low is not None else f"<= {fmt(high)}"


def between(column: str, low: float | None, high: float | None, name: str | None = None,
            where: tuple[str, str] | None = None) -> Expect:
    scope = f" where {where[0]} = {where[1]!r}" if where else ""
    return Expect(
        name or f"{column}_in_range", BETWEEN, (column,), f"{column} is {_bounds_text(low, high)}{scope}",
        min_value=low, max_value=high, where=where,
    )


def non_negative(column: str) -> Expect:
    return between(column, 0, None, name=f"{column}_non_negative")


def share(column: str) -> Expect:
    return between(column, 0, 1, name=f"{column}_share")


def not_future(column: str) -> Expect:
    return Expect(
        f"{column}_not_future", NOT_FUTURE, (column,),
        f"{column} is not after the end of the as-of day (or now, whichever is later)",
    )


# --- sources ---------------------------------------------------------------------------------

# Columns every row needs besides the key, account_id and the source's timestamp column: the
# ones the indicators branch on (a null there silently drops the row from every count).
REQUIRED: dict[str, tuple[str, ...]] = {
    "crm_accounts": ("size_tier", "plan", "licensed_seats", "contract_start_date", "renewal_date"),
    "usage_events": ("event_type", "received_at"),
    "support_tickets": ("category", "created_at"),
    "survey_responses": ("survey_type", "score"),
    "engagement_events": ("activity_type",),
}

# The allowed categories the landing contract lists (cs_assets/sources/schemas.py comments).
CATEGORIES: dict[str, dict[str, tuple[str, ...]]] = {
    "crm_accounts": {
        "size_tier": ("Enterprise", "Mid", "SMB"),
        "plan": ("starter", "professional", "enterprise"),
    },
    "usage_events": {
        "event_type": ("login", "job_run", "job_created", "feature_used", "page_view"),
        "job_status": ("success", "failure"),
        "feature_tier": ("core", "addon"),
    },
    "support_tickets": {
        "category": ("bug", "feature_request", "question", "incident", "billing"),
        "priority": ("low", "normal", "high", "urgent"),
        "status": ("open", "pending", "solved", "closed"),
    },
    "survey_responses": {"survey_type": ("nps", "csat")},
    "engagement_events": {
        "activity_type": ("webinar_attended", "community_post", "help_article_view", "case_study"),
    },
}

# Value ranges. One `score` column holds two survey types with different scales: one rule each.
RANGES: dict[str, tuple[Expect, ...]] = {
    "crm_accounts": (non_negative("licensed_seats"), non_negative("arr_usd")),
    "usage_events": (non_negative("load_ms"),),
    "support_tickets": (between("csat_score", 1, 5),),
    "survey_responses": (
        between("score", 0, 10, name="nps_score_in_range", where=("survey_type", "nps")),
        between("score", 1, 5, name="csat_score_in_range", where=("survey_type", "csat")),
    ),
    "engagement_events": (),
}

# The same real-world record sent twice under two ids survives the key de-duplication of the
# load and would be counted twice: a survey answer, an engagement activity.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "survey_responses": ("account_id", "user_id", "survey_type", "submitted_at"),
    "engagement_events": ("account_id", "user_id", "activity_type", "content_id", "occurred_at"),
}


def source_suite(source: str) -> tuple[Expect, ...]:
    spec = SOURCES[source]
    required = dict.fromkeys([*spec.key, "account_id", spec.timestamp_column, *REQUIRED[source]])
    rules = [not_null(c) for c in required]
    rules.append(unique(*spec.key, name="key_unique" if len(spec.key) > 1 else None, why="the source key"))
    if source in NATURAL_KEYS:
        rules.append(unique(*NATURAL_KEYS[source], name="natural_key_unique", why="the same record under two ids"))
    rules += [in_set(column, values) for column, values in CATEGORIES[source].items()]
    rules += RANGES[source]
    rules += [not_future(c) for c, dtype in spec.columns.items() if dtype == UTC_TS]
    return tuple(rules)


# --- the indicator table ----------------------------------------------------------------------

INDICATOR_SHARES = ("job_error_rate_30d", "core_feature_breadth_30d")
INDICATOR_COUNTS = (
    "licensed_seats", "tenure_days", "active_users_30d", "jobs_run_30d", "new_jobs_30d",
    "addon_features_used_30d", "usage_events_30d", "usage_events_prev_30d", "champion_days_inactive",
    "bug_tickets_90d", "incident_tickets_90d", "feature_request_tickets_90d", "question_tickets_90d",
    "webinars_attended_90d", "community_posts_90d", "help_views_90d", "case_studies_365d",
)
# not counts, but never negative; seat_penetration may exceed 1 (more users than licensed seats)
INDICATOR_NON_NEGATIVE = ("arr_usd", "seat_penetration", "page_load_p75_ms", "median_resolution_hours_90d")

INDICATOR_SUITE: tuple[Expect, ...] = (
    not_null("snapshot_date"),
    not_null("account_id"),
    not_null("is_active"),
    unique("snapshot_date", "account_id", name="snapshot_account_unique", why="one row per account and snapshot"),
    in_set("size_tier", CATEGORIES["crm_accounts"]["size_tier"]),
    in_set("plan", CATEGORIES["crm_accounts"]["plan"]),
    *[share(c) for c in INDICATOR_SHARES],
    *[non_negative(c) for c in (*INDICATOR_COUNTS, *INDICATOR_NON_NEGATIVE)],
    between("usage_trend_30d", -1, None),  # -1: no events at all this month
    between("nps_avg_365d", 0, 10),
    between("survey_csat_avg_365d", 1, 5),
    between("ticket_csat_avg_180d", 1, 5),
)

# the columns that say which row a bad value is in (shown beside it in the check's description)
ROW_IDS: dict[str, tuple[str, ...]] = {
    **{source: spec.key for source, spec in SOURCES.items()},
    INDICATORS: ("snapshot_date", "account_id"),
}

SUITES: dict[str, tuple[Expect, ...]] = {
    **{source: source_suite(source) for source in SOURCES},
    INDICATORS: INDICATOR_SUITE,
}


def _check_suites() -> None:
    """Fail at import when a rule names a column the contract does not have, or a name repeats."""
    # the indicator table: the catalogue, the raw counts behind it, and the CRM fields it carries
    indicator_columns = {*INDICATOR_COLUMNS, *USAGE_COUNTS, *ZERO_WHEN_ABSENT, "snapshot_date", "account_id",
                         "is_active", "size_tier", "plan", "licensed_seats", "arr_usd"}
    for table, rules in SUITES.items():
        known = set(SOURCES[table].columns) if table in SOURCES else indicator_columns
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"gx suite {table}: rule name(s) used twice: {', '.join(repeated)}")
        for rule in rules:
            if rule.kind not in KINDS:
                raise ValueError(f"gx suite {table}: rule {rule.name}: unknown kind {rule.kind!r}")
            unknown = [c for c in rule.needed_columns if c not in known]
            if unknown:
                raise ValueError(f"gx suite {table}: rule {rule.name}: unknown column(s) {', '.join(unknown)}")
        if table in SOURCES:
            for rule in rules:
                if rule.kind == BETWEEN and SOURCES[table].columns[rule.columns[0]] not in (pl.Int64, pl.Float64):
                    raise ValueError(f"gx suite {table}: rule {rule.name}: range on a non-numeric column")


_check_suites()
