"""The landing contract: where each source's export lives and which columns it must have.

The demo generator writes exactly this layout and the source assets read it, so a real export
that follows this page works without code changes. Paths are relative to the landing directory
(`$CS_HEALTH_HOME/landing`).

Text formats (CSV, JSON lines) carry every value as text; timestamps are ISO-8601 with a UTC
offset (`2026-10-30T23:15:00+09:00`, `...Z`, optional fractional seconds) and dates are
`YYYY-MM-DD`. Parquet columns must already have the listed types (timestamps tz-aware).
"""

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str  # file, or directory of part files, relative to the landing directory
    file_format: str  # "csv" | "parquet" | "jsonl"
    columns: dict[str, pl.DataType]  # column -> type after normalisation
    key: tuple[str, ...]  # columns that identify a row; duplicates on these are dropped
    timestamp_column: str  # newest value says how fresh the source is
    description: str


UTC_TS = pl.Datetime("us", "UTC")

CRM_ACCOUNTS = SourceSpec(
    name="crm_accounts",
    path="crm/accounts.csv",
    file_format="csv",
    columns={
        "account_id": pl.String,
        "account_name": pl.String,
        "industry": pl.String,
        "size_tier": pl.String,  # Enterprise | Mid | SMB
        "plan": pl.String,  # starter | professional | enterprise
        "licensed_seats": pl.Int64,
        "arr_usd": pl.Float64,
        "csm_owner": pl.String,
        "champion_user_ids": pl.String,  # ';'-separated user ids
        "contract_start_date": pl.Date,
        "renewal_date": pl.Date,
        "churn_date": pl.Date,  # null unless the account left
        "updated_at": UTC_TS,
    },
    key=("account_id",),
    timestamp_column="updated_at",
    description="CRM accounts and contracts export (CSV).",
)

USAGE_EVENTS = SourceSpec(
    name="usage_events",
    path="usage/events",
    file_format="parquet",
    columns={
        "event_id": pl.String,
        "account_id": pl.String,
        "user_id": pl.String,
        # login | job_run | job_created | feature_used | page_view
        "event_type": pl.String,
        "occurred_at": UTC_TS,
        "received_at": UTC_TS,
        "job_id": pl.String,
        "job_status": pl.String,  # success | failure, job_run only
        "feature": pl.String,  # feature_used only
        "feature_tier": pl.String,  # core | addon, feature_used only
        "load_ms": pl.Int64,  # page_view only
    },
    key=("event_id",),
    timestamp_column="occurred_at",
    description="Product usage events from the application database (Parquet parts).",
)

SUPPORT_TICKETS = SourceSpec(
    name="support_tickets",
    path="support/tickets.jsonl",
    file_format="jsonl",
    columns={
        "ticket_id": pl.Int64,
        "account_id": pl.String,
        # bug | feature_request | question | incident | billing
        "category": pl.String,
        "priority": pl.String,  # low | normal | high | urgent
        "status": pl.String,  # open | pending | solved | closed
        "created_at": UTC_TS,
        "solved_at": UTC_TS,
        "updated_at": UTC_TS,
        "csat_score": pl.Int64,  # 1-5, null when the requester did not answer
    },
    key=("ticket_id",),
    timestamp_column="updated_at",
    description="Support desk tickets export (JSON lines).",
)

SURVEY_RESPONSES = SourceSpec(
    name="survey_responses",
    path="surveys/responses.csv",
    file_format="csv",
    columns={
        "response_id": pl.String,
        "account_id": pl.String,
        "user_id": pl.String,
        "survey_type": pl.String,  # nps (0-10) | csat (1-5)
        "score": pl.Int64,
        "submitted_at": UTC_TS,
        "comment": pl.String,  # free text: kept, never scored
    },
    key=("response_id",),
    timestamp_column="submitted_at",
    description="NPS and CSAT survey responses (spreadsheet CSV export).",
)

ENGAGEMENT_EVENTS = SourceSpec(
    name="engagement_events",
    path="engagement/activities.jsonl",
    file_format="jsonl",
    columns={
        "activity_id": pl.String,
        "account_id": pl.String,
        "user_id": pl.String,
        # webinar_attended | community_post | help_article_view | case_study
        "activity_type": pl.String,
        "occurred_at": UTC_TS,
        "content_id": pl.String,
    },
    key=("activity_id",),
    timestamp_column="occurred_at",
    description="Events, community and help-content engagement (JSON lines).",
)

SOURCES: dict[str, SourceSpec] = {
    s.name: s
    for s in (CRM_ACCOUNTS, USAGE_EVENTS, SUPPORT_TICKETS, SURVEY_RESPONSES, ENGAGEMENT_EVENTS)
}

CORE_FEATURES = ("pipelines", "scheduler", "connectors", "transformations", "monitoring", "dashboards")
ADDON_FEATURES = ("reverse_etl", "data_quality", "lineage_explorer")
