"""Per-account indicators as of a snapshot date, computed with lazy polars expressions.

Pure functions over frames (no Dagster here). Every source is cut at the end of the as-of day,
usage additionally by when an event was received, so a snapshot only sees what had arrived.
"""

import datetime as dt

import polars as pl

from cs_assets.sources.schemas import CORE_FEATURES

USAGE_HISTORY_DAYS = 365


def as_of_end(as_of: dt.date) -> dt.datetime:
    """Exclusive upper bound of a snapshot: midnight UTC after the as-of day."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)


def _since(end: dt.datetime, days: int) -> dt.datetime:
    return end - dt.timedelta(days=days)


def active_accounts(crm: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    """Accounts under contract on the as-of date: started, and not churned by then."""
    return crm.filter(
        (pl.col("contract_start_date") <= as_of)
        & (pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of))
    )


def usage_indicators(usage: pl.LazyFrame, crm: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    end = as_of_end(as_of)
    last30 = pl.col("occurred_at") >= _since(end, 30)
    prev30 = (pl.col("occurred_at") >= _since(end, 60)) & ~last30
    etype = pl.col("event_type")
    history = usage.filter(
        (pl.col("occurred_at") < end)
        & (pl.col("received_at") < end)
        & (pl.col("occurred_at") >= _since(end, USAGE_HISTORY_DAYS))
    )
    per_account = history.group_by("account_id").agg(
        active_users_30d=pl.col("user_id").filter(last30 & (etype == "login")).n_unique(),
        jobs_run_30d=(last30 & (etype == "job_run")).sum(),
        job_failures_30d=(last30 & (etype == "job_run") & (pl.col("job_status") == "failure")).sum(),
        new_jobs_30d=(last30 & (etype == "job_created")).sum(),
        core_features_30d=pl.col("feature")
        .filter(last30 & (etype == "feature_used") & (pl.col("feature_tier") == "core"))
        .n_unique(),
        addon_features_used_30d=pl.col("feature")
        .filter(last30 & (etype == "feature_used") & (pl.col("feature_tier") == "addon"))
        .n_unique(),
        usage_events_30d=last30.sum(),
        usage_events_prev_30d=prev30.sum(),
        page_load_p75_ms=pl.col("load_ms")
        .filter(last30 & (etype == "page_view"))
        .cast(pl.Float64)
        .quantile(0.75, interpolation="linear"),
    )
    champions = (
        crm.select("account_id", user_id=pl.col("champion_user_ids").str.split(";"))
        .explode("user_id")
        .with_columns(pl.col("user_id").str.strip_chars())
        .filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))
    )
    champion_last_login = (
        history.filter(etype == "login")
        .join(champions, on=["account_id", "user_id"], how="semi")
        .group_by("account_id")
        .agg(champion_last_login=pl.col("occurred_at").max())
    )
    return (
        per_account.join(champion_last_login, on="account_id", how="left")
        .join(crm.select("account_id", "licensed_seats"), on="account_id", how="left")
        .with_columns(
            seat_penetration=pl.when(pl.col("licensed_seats") > 0).then(
                pl.col("active_users_30d") / pl.col("licensed_seats")
            ),
            job_error_rate_30d=pl.when(pl.col("jobs_run_30d") > 0).then(
                pl.col("job_failures_30d") / pl.col("jobs_run_30d")
            ),
            core_feature_breadth_30d=pl.col("core_features_30d") / len(CORE_FEATURES),
            usage_trend_30d=pl.when(pl.col("usage_events_prev_30d") > 0).then(
                pl.col("usage_events_30d") / pl.col("usage_events_prev_30d") - 1.0
            ),
            # whole days: a champion seen today is 0 days inactive
            champion_days_inactive=(pl.lit(end) - pl.col("champion_last_login")).dt.total_days(),
        )
        .drop("licensed_seats", "core_features_30d", "job_failures_30d", "champion_last_login")
    )


def ticket_indicators(tickets: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    end = as_of_end(as_of)
    known = tickets.filter(pl.col("created_at") < end)
    opened90 = pl.col("created_at") >= _since(end, 90)
    cat = pl.col("category")
    solved90 = (
        pl.col("solved_at").is_not_null() & (pl.col("solved_at") < end) & (pl.col("solved_at") >= _since(end, 90))
    )
    hours = (pl.col("solved_at") - pl.col("created_at")).dt.total_seconds() / 3600.0
    return known.group_by("account_id").agg(
        bug_tickets_90d=(opened90 & (cat == "bug")).sum(),
        incident_tickets_90d=(opened90 & (cat == "incident")).sum(),
        feature_request_tickets_90d=(opened90 & (cat == "feature_request")).sum(),
        question_tickets_90d=(opened90 & (cat == "question")).sum(),
        median_resolution_hours_90d=hours.filter(solved90).median(),
        # a rating is known once the ticket is solved; use tickets solved in the window
        ticket_csat_avg_180d=pl.col("csat_score")
        .filter(
            pl.col("solved_at").is_not_null()
            & (pl.col("solved_at") < end)
            & (pl.col("solved_at") >= _since(end, 180))
        )
        .cast(pl.Float64)
        .mean(),
    )


def survey_indicators(surveys: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    end = as_of_end(as_of)
    window = surveys.filter((pl.col("submitted_at") < end) & (pl.col("submitted_at") >= _since(end, 365)))
    kind = pl.col("survey_type")
    return window.group_by("account_id").agg(
        nps_avg_365d=pl.col("score").filter(kind == "nps").cast(pl.Float64).mean(),
        survey_csat_avg_365d=pl.col("score").filter(kind == "csat").cast(pl.Float64).mean(),
    )


def engagement_indicators(engagement: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    end = as_of_end(as_of)
    window = engagement.filter((pl.col("occurred_at") < end) & (pl.col("occurred_at") >= _since(end, 365)))
    in90 = pl.col("occurred_at") >= _since(end, 90)
    kind = pl.col("activity_type")
    return window.group_by("account_id").agg(
        webinars_attended_90d=(in90 & (kind == "webinar_attended")).sum(),
        community_posts_90d=(in90 & (kind == "community_post")).sum(),
        help_views_90d=(in90 & (kind == "help_article_view")).sum(),
        case_studies_365d=(kind == "case_study").sum(),
    )


USAGE_COUNTS = (
    "active_users_30d",
    "jobs_run_30d",
    "new_jobs_30d",
    "addon_features_used_30d",
    "usage_events_30d",
    "usage_events_prev_30d",
    "champion_days_inactive",
)

ZERO_WHEN_ABSENT = (
    "bug_tickets_90d",
    "incident_tickets_90d",
    "feature_request_tickets_90d",
    "question_tickets_90d",
    "webinars_attended_90d",
    "community_posts_90d",
    "help_views_90d",
    "case_studies_365d",
)


def compute_account_indicators(
    crm: pl.LazyFrame,
    usage: pl.LazyFrame,
    tickets: pl.LazyFrame,
    surveys: pl.LazyFrame,
    engagement: pl.LazyFrame,
    as_of: dt.date,
) -> pl.DataFrame:
    """One row per account that had started its contract by `as_of`, sorted by account_id.

    Churned accounts are kept (flagged `is_active = false`) so that validation can look at
    them; only active accounts are scored.
    """
    accounts = crm.filter(pl.col("contract_start_date") <= as_of).select(
        "account_id",
        "account_name",
        "size_tier",
        "plan",
        "industry",
        "csm_owner",
        "licensed_seats",
        "arr_usd",
        "contract_start_date",
        "renewal_date",
        "churn_date",
        is_active=pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of),
        tenure_days=(pl.lit(as_of) - pl.col("contract_start_date")).dt.total_days(),
        days_to_renewal=(pl.col("renewal_date") - pl.lit(as_of)).dt.total_days(),
    )
    frame = (
        accounts.join(usage_indicators(usage, crm, as_of), on="account_id", how="left")
        .join(ticket_indicators(tickets, as_of), on="account_id", how="left")
        .join(survey_indicators(surveys, as_of), on="account_id", how="left")
        .join(engagement_indicators(engagement, as_of), on="account_id", how="left")
        .with_columns(
            *[pl.col(c).fill_null(0).cast(pl.Int64) for c in ZERO_WHEN_ABSENT],
            # counts stay null when the account has no usage data at all ("no data", not zero)
            *[pl.col(c).cast(pl.Int64) for c in USAGE_COUNTS],
            has_usage_data=pl.col("usage_events_30d").is_not_null(),
            snapshot_date=pl.lit(as_of),
        )
        .sort("account_id")
    )
    return frame.collect()
