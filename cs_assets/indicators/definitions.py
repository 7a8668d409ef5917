"""The indicator catalogue: every column of `account_indicators` a model may score.

Windows end at the end of the as-of day (UTC). A null value means "no data" (the account has
no records that could measure it); a zero means the data exists and the count really is zero.
"""

INDICATOR_COLUMNS: dict[str, str] = {
    # product usage (null when the account has no usage events in the last 365 days)
    "seat_penetration": "distinct users who logged in during the last 30 days / licensed seats",
    "active_users_30d": "distinct users who logged in during the last 30 days",
    "champion_days_inactive": "days since a champion user last logged in (null: no champion login in 365 days)",
    "jobs_run_30d": "scheduled job runs in the last 30 days",
    "job_error_rate_30d": "failed job runs / job runs, last 30 days (null: no runs)",
    "new_jobs_30d": "jobs created in the last 30 days",
    "core_feature_breadth_30d": "share of the core features used in the last 30 days",
    "addon_features_used_30d": "distinct add-on features used in the last 30 days",
    "usage_trend_30d": "usage events last 30 days / the 30 days before, minus 1 (null: no events before)",
    "page_load_p75_ms": "75th percentile page load time in ms, last 30 days (null: no page views)",
    # support (counts are zero when the account opened no tickets)
    "bug_tickets_90d": "bug tickets opened in the last 90 days",
    "incident_tickets_90d": "incident tickets opened in the last 90 days",
    "feature_request_tickets_90d": "feature-request tickets opened in the last 90 days",
    "question_tickets_90d": "question tickets opened in the last 90 days",
    "median_resolution_hours_90d": "median hours from open to solved, tickets solved in the last 90 days",
    "ticket_csat_avg_180d": "average ticket CSAT (1-5), tickets rated in the last 180 days",
    # surveys (null when the account answered none)
    "nps_avg_365d": "average NPS rating (0-10) over the last 365 days",
    "survey_csat_avg_365d": "average survey CSAT (1-5) over the last 365 days",
    # engagement (counts are zero when there was none)
    "webinars_attended_90d": "webinar attendances in the last 90 days",
    "community_posts_90d": "community posts in the last 90 days",
    "help_views_90d": "help-content views in the last 90 days",
    "case_studies_365d": "case-study participations in the last 365 days",
    # contract
    "tenure_days": "days since the contract started",
    "days_to_renewal": "days until the renewal date",
}
