"""Per-account indicators as of a snapshot date, computed with lazy polars expressions.

Pure functions over frames (no Dagster here). Every source is cut at the end of the as-of day,
usage additionally by when an event was received, so a snapshot only sees what had arrived.
"""

import datetime as dt

import polars as pl

from cs_assets.sources.schemas import CORE_FEATURES

USAGE_HISTORY_DAYS = 365
DATES_PER_BATCH = 8


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


def build_usage_rollup(usage: pl.LazyFrame) -> pl.LazyFrame:
    """Usage events rolled up per account, activity day and arrival day (all UTC).

    Every snapshot's usage windows are derived from this table instead of rescanning the raw
    events. The arrival day (the later of occurred and received) is kept so that a snapshot
    still sees only events that had arrived by its end; distinct users and features are kept
    as sorted lists and page-load times as values, so distinct counts and percentiles over any
    window stay exact.
    """
    etype = pl.col("event_type")
    occurred, received = pl.col("occurred_at"), pl.col("received_at")
    arrived = pl.when(received.is_null() | occurred.is_null()).then(None).otherwise(pl.max_horizontal(occurred, received))
    feature_used = etype == "feature_used"
    return (
        usage.with_columns(activity_date=occurred.dt.date(), arrival_date=arrived.dt.date())
        .filter(pl.col("activity_date").is_not_null() & pl.col("arrival_date").is_not_null())
        .group_by("account_id", "activity_date", "arrival_date")
        .agg(
            usage_events=pl.len().cast(pl.Int64),
            jobs_run=(etype == "job_run").sum().cast(pl.Int64),
            job_failures=((etype == "job_run") & (pl.col("job_status") == "failure")).sum().cast(pl.Int64),
            new_jobs=(etype == "job_created").sum().cast(pl.Int64),
            login_users=pl.col("user_id").filter(etype == "login").drop_nulls().unique().sort(),
            core_features=pl.col("feature").filter(feature_used & (pl.col("feature_tier") == "core")).drop_nulls().unique().sort(),
            addon_features=pl.col("feature").filter(feature_used & (pl.col("feature_tier") == "addon")).drop_nulls().unique().sort(),
            page_load_ms=pl.col("load_ms").filter(etype == "page_view").drop_nulls().sort(),
        )
        .sort("account_id", "activity_date", "arrival_date")
    )


def usage_indicators(rollup: pl.LazyFrame, crm: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    """Usage indicators for one snapshot, from the daily rollup (windows end with the as-of day)."""
    day = pl.col("activity_date")
    history = rollup.filter(
        (pl.col("arrival_date") <= as_of) & (day <= as_of) & (day > as_of - dt.timedelta(days=USAGE_HISTORY_DAYS))
    )
    last30 = day > as_of - dt.timedelta(days=30)
    prev30 = (day > as_of - dt.timedelta(days=60)) & ~last30
    per_account = history.group_by("account_id").agg(
        active_users_30d=pl.col("login_users").filter(last30).list.explode(keep_nulls=False, empty_as_null=False).n_unique(),
        jobs_run_30d=pl.col("jobs_run").filter(last30).sum(),
        job_failures_30d=pl.col("job_failures").filter(last30).sum(),
        new_jobs_30d=pl.col("new_jobs").filter(last30).sum(),
        core_features_30d=pl.col("core_features").filter(last30).list.explode(keep_nulls=False, empty_as_null=False).n_unique(),
        addon_features_used_30d=pl.col("addon_features").filter(last30).list.explode(keep_nulls=False, empty_as_null=False).n_unique(),
        usage_events_30d=pl.col("usage_events").filter(last30).sum(),
        usage_events_prev_30d=pl.col("usage_events").filter(prev30).sum(),
        page_load_p75_ms=pl.col("page_load_ms")
        .filter(last30)
        .list.explode(keep_nulls=False, empty_as_null=False)
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
        history.select("account_id", "activity_date", user_id="login_users")
        .explode("user_id")
        .join(champions, on=["account_id", "user_id"], how="semi")
        .group_by("account_id")
        .agg(champion_last_login=pl.col("activity_date").max())
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
            # whole days: a champion seen on the as-of day is 0 days inactive
            champion_days_inactive=(pl.lit(as_of) - pl.col("champion_last_login")).dt.total_days(),
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


def renewal_date_as_of(as_of: dt.date) -> pl.Expr:
    """The renewal date that applied on `as_of`.

    A CRM export holds only the current term's renewal date. For a past snapshot, the term that
    applied then ended whole years earlier (annual terms): step the current date back by whole
    years while it stays after `as_of`. A renewal date already in the past is left as it is.
    """
    current = pl.col("renewal_date")
    years = (current.dt.year() - as_of.year).clip(lower_bound=0)
    stepped = current.dt.offset_by(pl.format("-{}y", years))
    stepped = pl.when(stepped <= as_of).then(stepped.dt.offset_by("1y")).otherwise(stepped)
    return pl.when(current > as_of).then(stepped).otherwise(current)


def account_indicator_frame(
    crm: pl.LazyFrame,
    usage_rollup: pl.LazyFrame,
    tickets: pl.LazyFrame,
    surveys: pl.LazyFrame,
    engagement: pl.LazyFrame,
    as_of: dt.date,
) -> pl.LazyFrame:
    """One row per account that had started its contract by `as_of`, sorted by account_id.

    Churned accounts are kept (flagged `is_active = false`) so that validation can look at
    them; only active accounts are scored. Contract state is the CRM's as of that date: started
    by then, not churned by then, and the renewal date of the term that applied then.
    """
    accounts = (
        crm.filter(pl.col("contract_start_date") <= as_of)
        .with_columns(renewal_date=renewal_date_as_of(as_of))
        .select(
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
            # a churn that had not happened yet on the as-of date is not known then
            churn_date=pl.when(pl.col("churn_date") <= as_of).then(pl.col("churn_date")),
            is_active=pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of),
            tenure_days=(pl.lit(as_of) - pl.col("contract_start_date")).dt.total_days(),
            days_to_renewal=(pl.col("renewal_date") - pl.lit(as_of)).dt.total_days(),
        )
    )
    return (
        accounts.join(usage_indicators(usage_rollup, crm, as_of), on="account_id", how="left")
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


def compute_account_indicators(
    crm: pl.LazyFrame,
    usage_rollup: pl.LazyFrame,
    tickets: pl.LazyFrame,
    surveys: pl.LazyFrame,
    engagement: pl.LazyFrame,
    as_of: dt.date | list[dt.date],
) -> pl.DataFrame:
    """Indicator rows for one snapshot date or several (stacked, oldest date first).

    Sources are read once and each snapshot's windows are cut from them in memory, so a
    backfill costs one scan of the inputs plus a small query per date.
    """
    dates = sorted(as_of) if isinstance(as_of, list) else [as_of]
    crm, usage_rollup, tickets, surveys, engagement = (
        frame.collect().lazy() for frame in (crm, usage_rollup, tickets, surveys, engagement)
    )
    frames: list[pl.DataFrame] = []
    # a few dates at a time: polars runs each batch in parallel, and memory stays bounded
    for i in range(0, len(dates), DATES_PER_BATCH):
        batch = dates[i : i + DATES_PER_BATCH]
        frames.extend(pl.collect_all([account_indicator_frame(crm, usage_rollup, tickets, surveys, engagement, d) for d in batch]))
    return pl.concat(frames, how="vertical")
