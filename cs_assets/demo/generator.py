"""Deterministic demo data: a year of realistic exports for every source of the landing contract.

Why this exists: the platform needs data to run end to end (demos, tests, weight validation)
without any customer's real exports. Every account gets a hidden health trajectory h(t) in
[0, 1] over the 365 days before `as_of`; all observable behaviour (logins, job runs, tickets,
survey scores, webinar attendance, ...) is drawn from it. The trajectory is written apart from
the landing directory (`<landing>/../demo_truth/account_truth.parquet`) so that validation can
check whether the scores recover it; the scoring code never reads it.

Layout and columns follow the shipped contract (`config/sources.yaml`) exactly. Output is a pure function of
(accounts, seed, as_of): one `numpy.random.default_rng(seed)` (split with `spawn` into one
stream per purpose and per chunk of accounts), no wall clock, fixed row orders, fixed Parquet
settings. Account-days are processed as numpy matrices in chunks of `CHUNK_ACCOUNTS` accounts
(one usage Parquet part per chunk), so memory stays bounded for 100k accounts.

Deliberate real-world mess (all of it must be absorbed by normalisation, none of it should fail
a data-quality check):
- ~0.2% exact duplicate rows in usage events, support tickets and survey responses
  (same key, same values), and a few identical duplicate rows in the CRM export;
- ~1% of `account_id` values in every source carry stray leading/trailing spaces
  (" ACC-000123", "ACC-000123 ");
- nulls in optional fields: CRM `industry` (~2%), ticket `csat_score` (~60%, always null on
  unsolved tickets), survey `comment` (~55%), `load_ms` on ~1% of page views;
- string timestamps with mixed UTC offsets: CRM `updated_at` in "+09:00" or "Z"; tickets in
  "Z", "+00:00" and a few "+09:00"; surveys and engagement in the account's local offset;
- late-arriving usage events: ~0.5% are received 1-5 days after they occurred (events that
  would only arrive after `as_of` are not in the export yet);
- survey comments with commas, double quotes and non-ASCII text (CSV quoting).
Duplicates and stray whitespace appear at least once per file even in tiny runs, so tests of
the normalisation always have something to bite on. Nothing refers to an unknown account, nothing is in the future (every timestamp, including
`received_at`, is before the end of the as-of day, UTC), and no required column is missing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pathlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from cs_assets.demo.common import (
    account_id_expr,
    add_years,
    begin_landing,
    duplicate_rows,
    expand,
    iso_with_offset,
    lookup,
    next_anniversary,
    whitespace_codes,
    write_manifest,
    write_parquet,
    zfill,
)
from cs_assets.deployment import DEFAULT_CONFIG_DIR, FILES, load_contract
from cs_assets.sources.contract import SourceSpec

# The demo product is the one the shipped config (`config/`) describes: its exports follow that
# contract exactly, whatever deployment the process is configured for.
DEMO_CONTRACT = load_contract(DEFAULT_CONFIG_DIR / FILES["sources"])
CRM_ACCOUNTS = DEMO_CONTRACT["crm_accounts"]
USAGE_EVENTS = DEMO_CONTRACT["usage_events"]
SUPPORT_TICKETS = DEMO_CONTRACT["support_tickets"]
SURVEY_RESPONSES = DEMO_CONTRACT["survey_responses"]
ENGAGEMENT_EVENTS = DEMO_CONTRACT["engagement_events"]
CSM_SENTIMENT = DEMO_CONTRACT["csm_sentiment"]
# the demo product's feature vocabulary (config/sources.yaml lists the same names)
CORE_FEATURES = ("pipelines", "scheduler", "connectors", "transformations", "monitoring", "dashboards")
ADDON_FEATURES = ("reverse_etl", "data_quality", "lineage_explorer")

DEMO_AS_OF = dt.date(2026, 10, 31)
GENERATOR_NAME = "cs-health-demo"
GENERATOR_VERSION = 1
TRUTH_DIR = "demo_truth"
TRUTH_FILE = "account_truth.parquet"

HISTORY_DAYS = 365  # the generated history: the 365 days ending with as_of (inclusive)
CHUNK_ACCOUNTS = 5000  # accounts per usage part file; bounds memory for large runs

_EPOCH = dt.date(1970, 1, 1)
_DAY_US = 86_400_000_000
_NEVER = np.iinfo(np.int64).max // 4  # "no churn / champion never left" as an epoch day

Rng = np.random.Generator
Arr = np.ndarray
Events = dict[str, np.ndarray]  # column arrays of generated usage events

TIERS = ("Enterprise", "Mid", "SMB")
TIER_SHARE = (0.15, 0.35, 0.50)
PLANS = ("starter", "professional", "enterprise")
PLAN_BY_TIER = np.array([[0.00, 0.30, 0.70], [0.25, 0.60, 0.15], [0.70, 0.28, 0.02]])
SEATS_BY_TIER = ((100, 1000), (20, 150), (5, 25))
SEAT_PRICE_MONTHLY = np.array([25.0, 45.0, 80.0])  # per plan
TRAJECTORIES = ("stable", "growing", "declining", "churned")
STABLE, GROWING, DECLINING, CHURNED = range(4)
CHURN_BY_TIER = np.array([0.08, 0.12, 0.16])  # overall ~13% of accounts
ONBOARDING_SHARE = 0.08
ONBOARDING_DAYS = 90
RAMP_DAYS = 45  # new accounts reach full adoption over this many days

INDUSTRIES = (
    "Manufacturing",
    "Retail",
    "Financial Services",
    "Healthcare",
    "Software",
    "Logistics",
    "Media",
    "Education",
)
PARENT_EVERY, CHILDREN = 25, 3
# CSM sentiment notes: the share of accounts with any, how far back, and the words used
NOTED_SHARE, NOTES_MAX, NOTES_DAYS_BACK = 0.4, 3, 150
SENTIMENTS = ("red", "yellow", "green")
NOTE_REASONS = (
    ("Sponsor unresponsive since the reorg", "Evaluating a competitor", "Budget cut announced for next year"),
    ("Rollout stalled in two teams", "Asked for a pricing review", "New admin still ramping up"),
    ("Expanding to a second region", "Great QBR, asked about the add-ons", "Champion presented us internally"),
)
# industries keep their customers differently (target tiers rank them): churn x this factor
CHURN_FACTOR_BY_INDUSTRY = np.array([0.7, 1.4, 0.5, 0.9, 1.0, 1.2, 1.7, 0.8])
NAME_HEADS = (
    "Aoba", "Sakura", "Hikari", "Midori", "Kaede", "Asahi", "Northwind", "Bluebird", "Summit",
    "Harbor", "Cedar", "Orion", "Lumen", "Vertex", "Nimbus", "Fuji", "Kawa", "Tsubasa", "Helix",
    "Atlas",
)  # fmt: skip
NAME_TAILS = (
    "Logistics", "Foods", "Systems", "Retail", "Bank", "Health", "Motors", "Media", "Labs",
    "Electric", "Trading", "Works", "Analytics", "Pharma", "Travel", "Energy",
)  # fmt: skip
NAME_FORMS = ("Inc.", "K.K.", "Ltd.", "Co., Ltd.", "Group", "Holdings", "")
CSM_NAMES = (
    "tanaka", "suzuki", "sato", "takahashi", "watanabe", "ito", "yamamoto", "nakamura",
    "kobayashi", "smith", "garcia", "muller",
)  # fmt: skip

# UTC offset styles used in string timestamps: (suffix, minutes east of UTC)
OFFSET_STYLES = (("Z", 0), ("+00:00", 0), ("+09:00", 540), ("-05:00", -300), ("-08:00", -480), ("+01:00", 60))
REGION_STYLE = np.array([2, 3, 4, 5, 0])  # account region -> offset style
REGION_SHARE = (0.55, 0.12, 0.08, 0.15, 0.10)  # Japan, US east, US west, Europe, UK

EVENT_TYPES = ("login", "job_run", "job_created", "feature_used", "page_view")
LOGIN, JOB_RUN, JOB_CREATED, FEATURE_USED, PAGE_VIEW = range(5)
WEEKDAY_FACTOR = np.array([1.0, 1.08, 1.08, 1.02, 0.85, 0.10, 0.07])  # Monday first

# usage rates, tuned for ~300-500 usage events per account-year on average
LOGINS_PER_USER_DAY = 0.018  # a non-champion active user, business day
CHAMPION_LOGIN_P = 0.35  # a healthy champion, business day
PAGE_VIEWS_PER_LOGIN = 0.5
FEATURES_PER_LOGIN = 0.32
JOB_RUNS_PER_JOB_DAY = 0.06
JOBS_AT_START = ((2, 7), (1, 4), (1, 2))  # by tier, for accounts started before the window
JOBS_CREATED_PER_DAY = np.array([0.033, 0.02, 0.01])  # by tier
ADDON_SHARE_BY_PLAN = np.array([0.01, 0.06, 0.25])  # share of feature use on add-ons at h = 1
LATE_SHARE = 0.005
LOAD_SIGMA = 0.5
LOAD_NULL_SHARE = 0.01

TICKETS_PER_YEAR = np.array([18.0, 8.0, 3.0])  # by tier, for a middling account
TICKET_CATEGORIES = ("bug", "feature_request", "question", "incident", "billing")
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_BY_CATEGORY = np.array(
    [
        [0.15, 0.55, 0.25, 0.05],  # bug
        [0.45, 0.50, 0.05, 0.00],  # feature_request
        [0.35, 0.60, 0.05, 0.00],  # question
        [0.00, 0.15, 0.45, 0.40],  # incident
        [0.20, 0.60, 0.20, 0.00],  # billing
    ]
)
RESOLUTION_PRIORITY_FACTOR = np.array([1.6, 1.0, 0.6, 0.3])
RESOLUTION_CATEGORY_FACTOR = np.array([1.5, 3.0, 0.6, 0.8, 0.7])
TICKET_STYLE_SHARE = (0.45, 0.45, 0.10)  # "Z", "+00:00", "+09:00"
CLOSE_AFTER_DAYS = 4  # a solved ticket is closed automatically after this many days
STALLED_SHARE = 0.06  # at h = 0.5

NPS_PER_YEAR = 0.9
CSAT_SURVEYS_PER_YEAR = 0.5
COMMENT_SHARE = 0.45
COMMENTS_GOOD = (
    "Great product, the scheduler saves us hours every week.",
    'Support was fast and friendly; "best vendor we have".',
    "Works well.",
    "Onboarding was smooth, thanks!",
    "サポートがとても丁寧でした。",
)
COMMENTS_MIXED = (
    "Good overall, but the dashboards are slow.",
    'Fine. Would like a "bulk edit" for pipelines.',
    "Documentation could be clearer, especially for connectors.",
)
COMMENTS_BAD = (
    "Too many failed jobs, we are evaluating alternatives.",
    'Pages take forever to load, "monitoring" is unusable.',
    "Pricing is hard to justify, honestly.",
    "障害が多く困っています。",
)

ACTIVITY_TYPES = ("webinar_attended", "community_post", "help_article_view", "case_study")
HELP_ARTICLES = 600
DUPLICATE_SHARE = 0.002
WHITESPACE_SHARE = 0.01
CRM_DUPLICATE_SHARE = 0.003


@dataclass(frozen=True)
class DemoSummary:
    """What one generator run wrote: enough to log it or to find the files again."""

    landing_dir: pathlib.Path
    accounts: int
    seed: int
    as_of: dt.date
    rows: dict[str, int]  # source name -> rows written (duplicates included)
    churned_accounts: int


@dataclass(frozen=True)
class _Calendar:
    """The generated window as epoch days, and the exclusive upper bound of the data."""

    as_of: dt.date
    day0: int  # first day of the window (epoch day)
    last: int  # as_of (epoch day)
    days: np.ndarray  # epoch days of the window, day0..last
    weekday: np.ndarray  # 0 = Monday
    end_us: int  # midnight UTC after as_of, in epoch microseconds


@dataclass(frozen=True)
class _Accounts:
    """Account-level parameters, one array entry per account (hidden ones included)."""

    num: np.ndarray  # account number, 1..N
    tier: np.ndarray
    plan: np.ndarray
    seats: np.ndarray
    arr: np.ndarray
    industry: np.ndarray  # -1: unknown
    name_head: np.ndarray
    name_tail: np.ndarray
    name_form: np.ndarray
    csm: np.ndarray
    region: np.ndarray
    trajectory: np.ndarray
    start: np.ndarray  # contract start, epoch day
    churn: np.ndarray  # churn date, epoch day (_NEVER if live)
    renewal: np.ndarray  # epoch day
    h0: np.ndarray  # health before the trend ...
    h1: np.ndarray  # ... and after it
    t0: np.ndarray  # trend start, epoch day
    t1: np.ndarray  # trend end, epoch day
    wobble_amp: np.ndarray  # (N, 2) slow sinusoidal noise on health
    wobble_period: np.ndarray
    wobble_phase: np.ndarray
    n_champions: np.ndarray  # 1 or 2
    champion_stop: np.ndarray  # epoch day the champions stop logging in (_NEVER: never)
    adoption: np.ndarray  # share of seats in use at h = 1
    activity: np.ndarray  # per-account activity multiplier
    perm_step: np.ndarray  # user rank -> user number: ((rank - 1) * step + offset) % seats + 1
    perm_offset: np.ndarray
    jobs_at_start: np.ndarray
    load_mu: np.ndarray  # log-mean of page load ms
    core_weights: np.ndarray  # (N, len(CORE_FEATURES))
    addon_weights: np.ndarray  # (N, len(ADDON_FEATURES))
    ticket_rate: np.ndarray  # tickets per year multiplier
    engagement: np.ndarray  # engagement propensity multiplier

    def __len__(self) -> int:
        return len(self.num)

    def take(self, sl: slice | np.ndarray) -> _Accounts:
        return _Accounts(**{f.name: getattr(self, f.name)[sl] for f in dataclasses.fields(self)})

    def user_num(self, idx: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """User number (1..seats) of the user with activity rank `rank` in account `idx`."""
        seats = self.seats[idx]
        return ((rank - 1) * self.perm_step[idx] + self.perm_offset[idx]) % seats + 1


@dataclass(frozen=True)
class _Activity:
    """Account-day matrices (chunk accounts x window days) that drive every event rate."""

    health: np.ndarray
    live: np.ndarray  # under contract that day
    ramp: np.ndarray  # onboarding adoption ramp, 0..1
    pool: np.ndarray  # active users (champions included), 0 when not live
    general: np.ndarray  # active non-champion users
    champions: np.ndarray  # champions still logging in


@dataclass
class _SmallSources:
    """Numeric rows of the small sources, collected over chunks and written at the end."""

    tickets: list[pl.DataFrame] = dataclasses.field(default_factory=list)
    surveys: list[pl.DataFrame] = dataclasses.field(default_factory=list)
    engagement: list[pl.DataFrame] = dataclasses.field(default_factory=list)


def generate_demo_data(
    landing_dir: pathlib.Path,
    accounts: int = 2000,
    seed: int = 7,
    as_of: dt.date = DEMO_AS_OF,
) -> DemoSummary:
    """Write a full demo landing directory (and the hidden truth next to it); return a summary.

    Same (accounts, seed, as_of) gives byte-identical files. The manifest is removed first and
    written last, so its presence means the run completed.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    landing_dir = pathlib.Path(landing_dir)
    manifest_path = begin_landing(landing_dir)

    cal = _calendar(as_of)
    n_chunks = math.ceil(accounts / CHUNK_ACCOUNTS)
    account_rng, crm_rng, finish_rng, *chunk_rngs = np.random.default_rng(seed).spawn(3 + n_chunks)
    acc = _draw_accounts(account_rng, accounts, cal)

    rows = {CRM_ACCOUNTS.name: _write_crm(crm_rng, acc, cal, landing_dir / CRM_ACCOUNTS.path)}

    usage_dir = landing_dir / USAGE_EVENTS.path
    usage_dir.mkdir(parents=True, exist_ok=True)
    for stale in usage_dir.glob("part-*.parquet"):
        stale.unlink()
    small = _SmallSources()
    usage_rows = 0
    next_event = 1
    for i, chunk_rng in enumerate(chunk_rngs):
        chunk = acc.take(slice(i * CHUNK_ACCOUNTS, (i + 1) * CHUNK_ACCOUNTS))
        usage_rng, ticket_rng, survey_rng, engagement_rng = chunk_rng.spawn(4)
        act = _activity(chunk, cal)
        usage, next_event = _usage_chunk(usage_rng, chunk, act, cal, next_event)
        write_parquet(usage, usage_dir / f"part-{i:05d}.parquet")
        usage_rows += usage.height
        del usage
        small.tickets.append(_ticket_rows(ticket_rng, chunk, act, cal))
        small.surveys.append(_survey_rows(survey_rng, chunk, act, cal))
        small.engagement.append(_engagement_rows(engagement_rng, chunk, act, cal))
    rows[USAGE_EVENTS.name] = usage_rows

    ticket_rng, survey_rng, engagement_rng = finish_rng.spawn(3)
    tickets = _finish_tickets(ticket_rng, pl.concat(small.tickets), cal)
    rows[SUPPORT_TICKETS.name] = _write_ndjson(tickets, landing_dir / SUPPORT_TICKETS.path)
    surveys = _finish_surveys(survey_rng, pl.concat(small.surveys))
    rows[SURVEY_RESPONSES.name] = _write_csv(surveys, landing_dir / SURVEY_RESPONSES.path)
    engagement = _finish_engagement(engagement_rng, pl.concat(small.engagement))
    rows[ENGAGEMENT_EVENTS.name] = _write_ndjson(engagement, landing_dir / ENGAGEMENT_EVENTS.path)

    # a stream of its own, so the other sources stay as they were without the notes
    notes = _csm_notes(np.random.default_rng([seed, 15]), acc, cal)
    rows[CSM_SENTIMENT.name] = _write_csv(notes, landing_dir / CSM_SENTIMENT.path)

    truth_path = landing_dir.parent / TRUTH_DIR / TRUTH_FILE
    write_parquet(_truth(acc, cal), truth_path)

    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "accounts": accounts,
        "as_of": as_of.isoformat(),
        "rows": rows,
    }
    write_manifest(manifest_path, manifest)
    return DemoSummary(
        landing_dir=landing_dir,
        accounts=accounts,
        seed=seed,
        as_of=as_of,
        rows=rows,
        churned_accounts=int((acc.trajectory == CHURNED).sum()),
    )


# --------------------------------------------------------------------------- accounts


def _calendar(as_of: dt.date) -> _Calendar:
    last = (as_of - _EPOCH).days
    days = np.arange(last - HISTORY_DAYS + 1, last + 1, dtype=np.int64)
    return _Calendar(
        as_of=as_of,
        day0=int(days[0]),
        last=last,
        days=days,
        weekday=(days + 3) % 7,  # 1970-01-01 was a Thursday
        end_us=(last + 1) * _DAY_US,
    )


def _categorical(rng: Rng, probs: np.ndarray) -> np.ndarray:
    """One draw per row of `probs` (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _draw_accounts(rng: Rng, n: int, cal: _Calendar) -> _Accounts:
    """Firmographics, contract dates and the hidden health trajectory of every account."""
    tier = rng.choice(3, size=n, p=TIER_SHARE)
    plan = _categorical(rng, PLAN_BY_TIER[tier])
    lo = np.array([s[0] for s in SEATS_BY_TIER])[tier]
    hi = np.array([s[1] for s in SEATS_BY_TIER])[tier]
    # skewed towards the low end of each tier's range (few huge customers)
    seats = np.rint(lo * (hi / lo) ** (rng.random(n) ** 2.0)).astype(np.int64)
    arr = np.round(seats * SEAT_PRICE_MONTHLY[plan] * 12 * rng.lognormal(0.0, 0.15, n), 0)
    industry = rng.choice(len(INDUSTRIES), size=n)
    industry[rng.random(n) < 0.02] = -1

    onboarding = rng.random(n) < ONBOARDING_SHARE
    churn_factor = np.where(industry >= 0, CHURN_FACTOR_BY_INDUSTRY[np.maximum(industry, 0)], 1.0)
    churned = ~onboarding & (rng.random(n) < CHURN_BY_TIER[tier] * churn_factor / (1 - ONBOARDING_SHARE))
    u = rng.random(n)
    trajectory = np.where(u < 0.17, GROWING, np.where(u < 0.36, DECLINING, STABLE))
    trajectory = np.where(onboarding, np.where(u < 0.5, GROWING, STABLE), trajectory)
    trajectory[churned] = CHURNED

    churn = np.full(n, _NEVER, dtype=np.int64)
    churn[churned] = cal.last - rng.integers(1, HISTORY_DAYS - 14, size=int(churned.sum()))
    start = np.where(
        onboarding,
        cal.last - rng.integers(1, ONBOARDING_DAYS, size=n),
        cal.last - rng.integers(ONBOARDING_DAYS, 3 * 365, size=n),
    )
    # most churn happens at a renewal: the contract started whole years before the churn date
    at_renewal = churned & (rng.random(n) < 0.65)
    churned_start = np.where(
        at_renewal,
        add_years(churn, -rng.integers(1, 4, size=n)),
        churn - rng.integers(150, 3 * 365, size=n),
    )
    start = np.where(churned, churned_start, start)
    renewal = next_anniversary(start, np.where(churned, churn - 1, cal.last))

    h0, h1, t0, t1 = _trajectory_params(rng, trajectory, churn, cal)
    n_champions = 1 + (rng.random(n) < 0.4)
    champion_leaves = np.where(np.isin(trajectory, (DECLINING, CHURNED)), rng.random(n) < 0.65, rng.random(n) < 0.03)
    life_end = np.where(churned, churn, cal.last)
    champion_stop = np.where(
        champion_leaves,
        life_end - np.where(trajectory == STABLE, rng.integers(20, 200, n), rng.integers(20, 91, n)),
        _NEVER,
    )
    mean_health = (h0 + h1) / 2
    p75 = np.clip(550 * np.exp(1.2 * (0.6 - mean_health) + rng.normal(0, 0.6, n)), 300, 3000)
    jobs_lo = np.array([j[0] for j in JOBS_AT_START])[tier]
    jobs_hi = np.array([j[1] for j in JOBS_AT_START])[tier]
    jobs_at_start = np.where(start < cal.day0, rng.integers(jobs_lo, jobs_hi + 1), 0)
    return _Accounts(
        num=np.arange(1, n + 1, dtype=np.int64),
        tier=tier,
        plan=plan,
        seats=seats,
        arr=arr,
        industry=industry,
        name_head=rng.integers(0, len(NAME_HEADS), n),
        name_tail=rng.integers(0, len(NAME_TAILS), n),
        name_form=rng.integers(0, len(NAME_FORMS), n),
        csm=rng.integers(0, len(CSM_NAMES), n),
        region=rng.choice(len(REGION_SHARE), size=n, p=REGION_SHARE),
        trajectory=trajectory,
        start=start,
        churn=churn,
        renewal=renewal,
        h0=h0,
        h1=h1,
        t0=t0,
        t1=t1,
        wobble_amp=rng.uniform(0.01, 0.05, (n, 2)),
        wobble_period=rng.uniform(20, 120, (n, 2)),
        wobble_phase=rng.uniform(0, 2 * np.pi, (n, 2)),
        n_champions=n_champions.astype(np.int64),
        champion_stop=champion_stop,
        adoption=rng.uniform(0.45, 0.9, n),
        activity=rng.lognormal(0.0, 0.3, n),
        perm_step=_coprime_step(seats),
        perm_offset=rng.integers(0, seats),
        jobs_at_start=jobs_at_start,
        load_mu=np.log(p75) - 0.6745 * LOAD_SIGMA,
        core_weights=rng.dirichlet(np.full(len(CORE_FEATURES), 0.9), n),
        addon_weights=rng.dirichlet(np.full(len(ADDON_FEATURES), 0.6), n),
        ticket_rate=rng.lognormal(0.0, 0.4, n),
        engagement=rng.lognormal(0.0, 0.6, n),
    )


def _trajectory_params(
    rng: Rng, trajectory: np.ndarray, churn: np.ndarray, cal: _Calendar
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Health moves from h0 to h1 between days t0 and t1 (smoothstep); flat outside."""
    n = len(trajectory)
    level = 0.3 + 0.67 * rng.beta(4.0, 2.5, n)
    h0 = level.copy()
    h1 = np.clip(level + rng.normal(0, 0.04, n), 0.05, 0.97)
    t0 = np.full(n, float(cal.day0))
    t1 = np.full(n, float(cal.last))

    g = trajectory == GROWING
    h0[g] = rng.uniform(0.3, 0.6, g.sum())
    h1[g] = np.minimum(0.97, h0[g] + rng.uniform(0.2, 0.4, g.sum()))
    t0[g] = cal.last - rng.uniform(120, 425, g.sum())
    t1[g] = t0[g] + rng.uniform(90, 240, g.sum())

    d = trajectory == DECLINING
    h0[d] = rng.uniform(0.55, 0.9, d.sum())
    h1[d] = rng.uniform(0.08, 0.35, d.sum())
    t1[d] = cal.last + rng.uniform(0, 30, d.sum())
    t0[d] = t1[d] - rng.uniform(60, 240, d.sum())

    c = trajectory == CHURNED
    h0[c] = rng.uniform(0.45, 0.85, c.sum())
    h1[c] = rng.uniform(0.02, 0.15, c.sum())
    t1[c] = churn[c].astype(float)
    t0[c] = t1[c] - rng.uniform(60, 150, c.sum())
    return h0, h1, t0, t1


def _health(acc: _Accounts, days: np.ndarray) -> np.ndarray:
    """Hidden health h(t) in [0.01, 0.99]: rows are accounts, `days` (epoch days) broadcasts.

    Pass `cal.days[None, :]` for an account x day matrix, or one day per account as `(n, 1)`.
    """
    x = np.clip((days - acc.t0[:, None]) / np.maximum(acc.t1 - acc.t0, 1.0)[:, None], 0.0, 1.0)
    base = acc.h0[:, None] + (acc.h1 - acc.h0)[:, None] * (x * x * (3 - 2 * x))
    for k in range(acc.wobble_amp.shape[1]):
        phase = 2 * np.pi * days / acc.wobble_period[:, k, None] + acc.wobble_phase[:, k, None]
        base = base + acc.wobble_amp[:, k, None] * np.sin(phase)
    return np.clip(base, 0.01, 0.99)


def _coprime_step(seats: np.ndarray) -> np.ndarray:
    """A step coprime with each account's seat count, so the rank -> user map is a permutation."""
    step = np.zeros_like(seats)
    for prime in (7, 11, 13, 17, 19, 23, 29, 31):
        step = np.where((step == 0) & (seats % prime != 0), prime, step)
    return step


# --------------------------------------------------------------------------- account-day matrices


def _activity(acc: _Accounts, cal: _Calendar) -> _Activity:
    """Health, contract status and active-user pools per account-day for one chunk."""
    days = cal.days
    health = _health(acc, days[None, :])
    live = (days[None, :] >= acc.start[:, None]) & (days[None, :] < acc.churn[:, None])
    ramp = np.clip((days[None, :] - acc.start[:, None] + 1) / RAMP_DAYS, 0.0, 1.0) * live
    pool = np.rint(acc.seats[:, None] * acc.adoption[:, None] * health * ramp)
    pool = (np.clip(pool, 1, acc.seats[:, None]) * live).astype(np.int64)
    champions_on = live & (days[None, :] < acc.champion_stop[:, None])
    champions = champions_on * acc.n_champions[:, None]
    general = np.maximum(pool - acc.n_champions[:, None], 1) * live
    return _Activity(health, live, ramp, pool, general, champions)


def _seconds_of_day(rng: Rng, offset_min: Arr, mean_h: float, sd_h: float) -> Arr:
    """UTC second of the (UTC) day for events at local time ~N(mean_h, sd_h) hours."""
    local = np.clip(rng.normal(mean_h * 3600, sd_h * 3600, len(offset_min)), 0, 86_399)
    return ((local - offset_min * 60) % 86_400).astype(np.int64)


def _offset_minutes(acc: _Accounts, idx: np.ndarray) -> np.ndarray:
    return np.array([m for _, m in OFFSET_STYLES])[REGION_STYLE[acc.region[idx]]]


def _pick_user_rank(rng: Rng, act: _Activity, a: Arr, d: Arr, first: Arr) -> Arr:
    """Activity rank of the user behind an event: an active champion or a general active user.

    `first` is the account's first general rank (champions hold ranks 1..n_champions).
    """
    champs = act.champions[a, d]
    k = np.floor(rng.random(len(a)) * (champs + act.general[a, d])).astype(np.int64)
    return np.where(k < champs, k + 1, first + (k - champs))


# --------------------------------------------------------------------------- usage events


def _usage_chunk(
    rng: Rng, acc: _Accounts, act: _Activity, cal: _Calendar, first_event: int
) -> tuple[pl.DataFrame, int]:
    """All usage events of one chunk of accounts, in the contract's column layout.

    Returns the frame and the next free event sequence number.
    """
    h = act.health
    weekday = WEEKDAY_FACTOR[cal.weekday][None, :]
    mult = acc.activity[:, None]
    lam_login = act.general * LOGINS_PER_USER_DAY * weekday * mult
    lam_champion = act.champions * CHAMPION_LOGIN_P * np.minimum(1.0, 1.2 * h) * weekday
    sessions = lam_login + lam_champion

    parts = [
        _login_events(rng, acc, act, lam_login, lam_champion),
        _job_events(rng, acc, act, cal),
        _feature_events(rng, acc, act, sessions * FEATURES_PER_LOGIN * (0.6 + 0.8 * h)),
        _page_view_events(rng, acc, act, sessions * PAGE_VIEWS_PER_LOGIN),
    ]
    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    a, d = ev["a"], ev["d"]
    n = len(a)
    # occurred_at: whole seconds plus milliseconds; received_at: seconds later, ~0.5% days later
    occurred = (cal.days[d] * 86_400 + ev["sec"]) * 1_000_000 + rng.integers(0, 1000, n) * 1000
    delay = np.rint(rng.lognormal(np.log(2.0), 1.0, n) * 1_000_000).astype(np.int64)
    late = rng.random(n) < LATE_SHARE
    delay[late] = rng.integers(_DAY_US, 5 * _DAY_US, int(late.sum()))
    received = occurred + delay
    keep = received < cal.end_us  # not arrived yet at the export: not in it
    order = np.lexsort((ev["type"][keep], acc.num[a[keep]], occurred[keep]))
    cols = {k: v[keep][order] for k, v in ev.items()}
    occurred, received = occurred[keep][order], received[keep][order]
    n = len(occurred)
    seq = np.arange(first_event, first_event + n, dtype=np.int64)

    rows = duplicate_rows(rng, n, DUPLICATE_SHARE)
    ws = whitespace_codes(rng, n, WHITESPACE_SHARE)[rows]
    a = cols["a"][rows]
    raw = pl.DataFrame(
        {
            "seq": seq[rows],
            "acc": acc.num[a],
            "ws": ws,
            "user": cols["user"][rows],
            "type": cols["type"][rows],
            "occurred": occurred[rows],
            "received": received[rows],
            "job": cols["job"][rows],
            "failed": cols["failed"][rows],
            "feature": cols["feature"][rows],
            "load": cols["load"][rows],
        }
    )
    features = CORE_FEATURES + ADDON_FEATURES
    acc6 = zfill("acc", 6)
    frame = raw.select(
        event_id=pl.lit("EV-") + zfill("seq", 10),
        account_id=account_id_expr("ACC-", "acc", "ws"),
        user_id=pl.lit("U-") + acc6 + pl.lit("-") + zfill("user", 3),
        event_type=lookup("type", EVENT_TYPES),
        occurred_at=_utc("occurred"),
        received_at=_utc("received"),
        job_id=pl.when(pl.col("job") > 0).then(pl.lit("J-") + acc6 + pl.lit("-") + zfill("job", 3)),
        job_status=pl.when(pl.col("type") == JOB_RUN).then(
            pl.when(pl.col("failed") == 1).then(pl.lit("failure")).otherwise(pl.lit("success"))
        ),
        feature=pl.when(pl.col("feature") >= 0).then(lookup("feature", features)),
        feature_tier=pl.when(pl.col("feature") >= len(CORE_FEATURES))
        .then(pl.lit("addon"))
        .when(pl.col("feature") >= 0)
        .then(pl.lit("core")),
        load_ms=pl.when(pl.col("load") >= 0).then(pl.col("load")),
    )
    return _conform(frame, USAGE_EVENTS), first_event + n


def _events(a: Arr, d: Arr, etype: int, sec: Arr, user: Arr, **extra: Arr) -> Events:
    """Column arrays of one event type; absent attributes are -1."""
    n = len(a)
    none = np.full(n, -1, dtype=np.int64)
    return {
        "a": a,
        "d": d,
        "type": np.full(n, etype, dtype=np.int8),
        "sec": sec,
        "user": user,
        "job": extra.get("job", none),
        "failed": extra.get("failed", none),
        "feature": extra.get("feature", none),
        "load": extra.get("load", none),
    }


def _login_events(rng: Rng, acc: _Accounts, act: _Activity, lam_general: Arr, lam_champion: Arr) -> Events:
    """Logins of general active users and, separately, of champions (who stop when they leave)."""
    a, d = expand(rng.poisson(lam_general))
    rank = acc.n_champions[a] + 1 + np.floor(rng.random(len(a)) * act.general[a, d]).astype(np.int64)
    ca, cd = expand(rng.poisson(lam_champion))
    crank = 1 + np.floor(rng.random(len(ca)) * act.champions[ca, cd]).astype(np.int64)
    a, d, rank = np.concatenate([a, ca]), np.concatenate([d, cd]), np.concatenate([rank, crank])
    sec = _seconds_of_day(rng, _offset_minutes(acc, a), 10.5, 2.5)
    return _events(a, d, LOGIN, sec, acc.user_num(a, rank))


def _job_events(rng: Rng, acc: _Accounts, act: _Activity, cal: _Calendar) -> Events:
    """Jobs created (fewer when declining, a burst while onboarding) and scheduled job runs.

    Runs pick one of the jobs that existed the day before; failures rise as health falls.
    """
    h = act.health
    growth = np.clip(h - np.roll(h, 30, axis=1), 0.0, None)
    growth[:, :30] = 0.0
    weekday = WEEKDAY_FACTOR[cal.weekday][None, :]
    lam_created = act.live * (
        JOBS_CREATED_PER_DAY[acc.tier][:, None] * (0.2 + h + 4 * growth) * weekday + 0.12 * (act.ramp < 1) * act.live
    )
    created = rng.poisson(lam_created)
    jobs_before = acc.jobs_at_start[:, None] + np.cumsum(created, axis=1) - created
    ca, cd = expand(created)
    first_of_account = np.concatenate([[0], np.cumsum(created.sum(axis=1))[:-1]])
    created_job = acc.jobs_at_start[ca] + np.arange(len(ca)) - first_of_account[ca] + 1
    c_rank = _pick_user_rank(rng, act, ca, cd, acc.n_champions[ca] + 1)
    c_sec = _seconds_of_day(rng, _offset_minutes(acc, ca), 14.0, 2.5)

    lam_runs = act.live * jobs_before * JOB_RUNS_PER_JOB_DAY * np.minimum(1.0, 0.25 + h)
    ra, rd = expand(rng.poisson(lam_runs))
    run_job = 1 + np.floor(rng.random(len(ra)) * jobs_before[ra, rd]).astype(np.int64)
    owner_rank = 1 + (run_job - 1) % np.minimum(acc.seats[ra], 3)
    failed = rng.random(len(ra)) < 0.02 + 0.2 * (1 - h[ra, rd]) ** 1.5
    r_sec = _seconds_of_day(rng, _offset_minutes(acc, ra), 3.0, 1.5)

    created_ev = _events(ca, cd, JOB_CREATED, c_sec, acc.user_num(ca, c_rank), job=created_job)
    run_owner = acc.user_num(ra, owner_rank)
    run_ev = _events(ra, rd, JOB_RUN, r_sec, run_owner, job=run_job, failed=failed.astype(np.int64))
    return {k: np.concatenate([created_ev[k], run_ev[k]]) for k in created_ev}


def _feature_events(rng: Rng, acc: _Accounts, act: _Activity, lam: Arr) -> Events:
    """Feature use: core features by account taste; add-ons mostly on enterprise plans when healthy."""
    a, d = expand(rng.poisson(lam))
    core = _categorical(rng, acc.core_weights[a])
    addon = len(CORE_FEATURES) + _categorical(rng, acc.addon_weights[a])
    use_addon = rng.random(len(a)) < ADDON_SHARE_BY_PLAN[acc.plan[a]] * act.health[a, d] ** 2
    rank = _pick_user_rank(rng, act, a, d, acc.n_champions[a] + 1)
    sec = _seconds_of_day(rng, _offset_minutes(acc, a), 13.5, 2.5)
    return _events(a, d, FEATURE_USED, sec, acc.user_num(a, rank), feature=np.where(use_addon, addon, core))


def _page_view_events(rng: Rng, acc: _Accounts, act: _Activity, lam: Arr) -> Events:
    """Page views with log-normal load times around each account's own typical speed."""
    a, d = expand(rng.poisson(lam))
    load = np.rint(np.exp(rng.normal(acc.load_mu[a], LOAD_SIGMA))).astype(np.int64)
    load[rng.random(len(a)) < LOAD_NULL_SHARE] = -1
    rank = _pick_user_rank(rng, act, a, d, acc.n_champions[a] + 1)
    sec = _seconds_of_day(rng, _offset_minutes(acc, a), 13.5, 2.5)
    return _events(a, d, PAGE_VIEW, sec, acc.user_num(a, rank), load=load)


# --------------------------------------------------------------------------- small sources


def _ticket_rows(rng: Rng, acc: _Accounts, act: _Activity, cal: _Calendar) -> pl.DataFrame:
    """Tickets of one chunk as numbers: more bugs and incidents, slower and sadder when unhealthy."""
    h = act.health
    lam = (
        act.live
        * (TICKETS_PER_YEAR[acc.tier] * acc.ticket_rate)[:, None]
        / 365
        * (0.5 + 1.5 * (1 - h))
        * (1 + 1.5 * (act.ramp < 1))
        * WEEKDAY_FACTOR[cal.weekday][None, :]
        / WEEKDAY_FACTOR.mean()
    )
    a, d = expand(rng.poisson(lam))
    n = len(a)
    th = h[a, d]
    weights = np.stack(  # in TICKET_CATEGORIES order
        [0.15 + 0.25 * (1 - th), 0.05 + 0.2 * th, np.full(n, 0.35), 0.02 + 0.15 * (1 - th), np.full(n, 0.07)],
        axis=1,
    )
    category = _categorical(rng, weights)
    priority = _categorical(rng, PRIORITY_BY_CATEGORY[category])
    created = (cal.days[d] * 86_400 + _seconds_of_day(rng, _offset_minutes(acc, a), 13.0, 2.5)) * 1_000_000
    median_h = 5.0 * (1 + 3 * (1 - th)) * RESOLUTION_PRIORITY_FACTOR[priority] * RESOLUTION_CATEGORY_FACTOR[category]
    # a few tickets stall (escalations, waiting on the customer), more often at unhappy
    # accounts: they make the open backlog
    stall_p = STALLED_SHARE * (0.4 + 1.2 * (1 - th))
    stalled = np.where(rng.random(n) < stall_p, rng.uniform(5, 30, n), 1.0)
    hours = rng.lognormal(np.log(median_h), 1.0) * stalled
    solved = created + np.rint(hours * 3600).astype(np.int64) * 1_000_000
    rated = rng.random(n) < 0.4
    csat = np.clip(np.rint(rng.normal(2.6 + 2.0 * th, 0.9)), 1, 5).astype(np.int64)
    return pl.DataFrame(
        {
            "acc": acc.num[a],
            "created": created,
            "solved": solved,
            "category": category.astype(np.int8),
            "priority": priority.astype(np.int8),
            "csat": np.where(rated, csat, -1),
            "style": _categorical(rng, np.tile(TICKET_STYLE_SHARE, (n, 1))).astype(np.int8),
            "pending": rng.random(n) < 0.35,
            "touch": rng.exponential(0.8, n),
        }
    )


def _finish_tickets(rng: Rng, raw: pl.DataFrame, cal: _Calendar) -> pl.DataFrame:
    """Status from the resolution time, ids in creation order, mess, ISO strings with offsets.

    Tickets not solved by the end of as_of are open or pending (recent ones); solved tickets are
    closed automatically after a few days (older ones).
    """
    end = cal.end_us
    close_us = CLOSE_AFTER_DAYS * _DAY_US
    raw = raw.sort("created", "acc", "category", maintain_order=True)
    unsolved = pl.col("solved") >= end
    # unsolved tickets were last touched recently (replies, status changes)
    touched = pl.max_horizontal(end - 1_000_000 - (pl.col("touch") * _DAY_US).cast(pl.Int64), "created")
    raw = raw.with_columns(
        ticket_id=pl.int_range(1, pl.len() + 1, dtype=pl.Int64) + 10_000,
        status=pl.when(unsolved)
        .then(pl.when(pl.col("pending")).then(pl.lit("pending")).otherwise(pl.lit("open")))
        .when(pl.col("solved") + close_us < end)
        .then(pl.lit("closed"))
        .otherwise(pl.lit("solved")),
        solved=pl.when(~unsolved).then(pl.col("solved")),
        updated=pl.when(unsolved)
        .then(touched)
        .when(pl.col("solved") + close_us < end)
        .then(pl.col("solved") + close_us)
        .otherwise(pl.col("solved")),
        csat=pl.when(~unsolved & (pl.col("csat") > 0)).then(pl.col("csat")),
    )
    raw = _add_mess(rng, raw, DUPLICATE_SHARE)
    frame = raw.select(
        ticket_id="ticket_id",
        account_id=account_id_expr("ACC-", "acc", "ws"),
        category=lookup("category", TICKET_CATEGORIES),
        priority=lookup("priority", PRIORITIES),
        status="status",
        created_at=iso_with_offset("created", "style", OFFSET_STYLES, 1),
        solved_at=iso_with_offset("solved", "style", OFFSET_STYLES, 1),
        updated_at=iso_with_offset("updated", "style", OFFSET_STYLES, 1),
        csat_score="csat",
    )
    return frame


def _survey_rows(rng: Rng, acc: _Accounts, act: _Activity, cal: _Calendar) -> pl.DataFrame:
    """NPS and CSAT answers: sparse, from active users, correlated with health but skewed positive."""
    weekday = WEEKDAY_FACTOR[cal.weekday][None, :] / WEEKDAY_FACTOR.mean()
    size = (1 + 0.3 * (acc.tier < 2))[:, None]
    frames = []
    for kind, per_year in ((0, NPS_PER_YEAR), (1, CSAT_SURVEYS_PER_YEAR)):
        a, d = expand(rng.poisson(act.live * act.ramp * per_year / 365 * size * weekday))
        th = act.health[a, d]
        n = len(a)
        if kind == 0:
            score = np.clip(np.rint(rng.normal(5.0 + 5.0 * th, 1.6)), 0, 10)
        else:
            score = np.clip(np.rint(rng.normal(2.8 + 2.2 * th, 0.8)), 1, 5)
        sentiment = score / (10 if kind == 0 else 5)
        rank = _pick_user_rank(rng, act, a, d, acc.n_champions[a] + 1)
        sec = _seconds_of_day(rng, _offset_minutes(acc, a), 12.0, 3.0)
        frames.append(
            pl.DataFrame(
                {
                    "acc": acc.num[a],
                    "user": acc.user_num(a, rank),
                    "kind": np.full(n, kind, dtype=np.int8),
                    "score": score.astype(np.int64),
                    "submitted": (cal.days[d] * 86_400 + sec) * 1_000_000,
                    "style": REGION_STYLE[acc.region[a]].astype(np.int8),
                    "comment": _comments(rng, sentiment),
                }
            )
        )
    return pl.concat(frames)


def _comments(rng: Rng, sentiment: np.ndarray) -> np.ndarray:
    """Index into the canned comments (good, mixed, bad concatenated) or -1 for no comment."""
    good, mixed, bad = len(COMMENTS_GOOD), len(COMMENTS_MIXED), len(COMMENTS_BAD)
    n = len(sentiment)
    bucket = np.where(sentiment >= 0.8, 0, np.where(sentiment >= 0.6, 1, 2))
    size = np.array([good, mixed, bad])[bucket]
    offset = np.array([0, good, good + mixed])[bucket]
    pick = offset + np.floor(rng.random(n) * size).astype(np.int64)
    return np.where(rng.random(n) < COMMENT_SHARE, pick, -1)


def _finish_surveys(rng: Rng, raw: pl.DataFrame) -> pl.DataFrame:
    # two draws can land on the same user and second: one answer (the natural key must hold at any size)
    raw = (
        raw.sort("submitted", "acc", "kind", maintain_order=True)
        .unique(subset=["acc", "user", "kind", "submitted"], keep="first", maintain_order=True)
        .with_columns(rid=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    )
    raw = _add_mess(rng, raw, DUPLICATE_SHARE)
    comments = COMMENTS_GOOD + COMMENTS_MIXED + COMMENTS_BAD
    return raw.select(
        response_id=pl.lit("R-") + zfill("rid", 7),
        account_id=account_id_expr("ACC-", "acc", "ws"),
        user_id=pl.lit("U-") + zfill("acc", 6) + pl.lit("-") + zfill("user", 3),
        survey_type=lookup("kind", ("nps", "csat")),
        score="score",
        submitted_at=iso_with_offset("submitted", "style", OFFSET_STYLES, 1),
        comment=pl.when(pl.col("comment") >= 0).then(lookup("comment", comments)),
    )


def _engagement_rows(rng: Rng, acc: _Accounts, act: _Activity, cal: _Calendar) -> pl.DataFrame:
    """Help-content views, monthly webinars, community posts, rare case studies (healthy only)."""
    h = act.health
    weekday = WEEKDAY_FACTOR[cal.weekday][None, :] / WEEKDAY_FACTOR.mean()
    prop = (acc.engagement[:, None]) * act.live
    users = np.sqrt(act.pool)
    webinar_day = _webinar_days(cal)[None, :]
    rates = (
        prop * (2.0 + 1.5 * users) / 365 * (0.4 + h) * weekday,  # help articles
        prop * webinar_day * 0.35 * (0.2 + h) * np.minimum(users, 3) / 2,  # webinars
        prop * 1.5 / 365 * h**2 * weekday,  # community posts
        act.live * 0.25 / 365 * (h > 0.75) * weekday,  # case studies
    )
    kinds = (2, 0, 1, 3)  # index into ACTIVITY_TYPES, same order as rates
    frames = []
    for kind, lam in zip(kinds, rates, strict=True):
        a, d = expand(rng.poisson(lam))
        n = len(a)
        rank = _pick_user_rank(rng, act, a, d, acc.n_champions[a] + 1)
        mean_hour = 11.0 if kind == 0 else 14.0
        sec = _seconds_of_day(rng, _offset_minutes(acc, a), mean_hour, 2.5)
        if kind == 2:
            content = np.minimum(rng.zipf(1.4, n), HELP_ARTICLES)
        elif kind == 1:
            content = rng.integers(100_000, 1_000_000, n)
        else:
            content = np.zeros(n, dtype=np.int64)
        frames.append(
            pl.DataFrame(
                {
                    "acc": acc.num[a],
                    "user": acc.user_num(a, rank),
                    "kind": np.full(n, kind, dtype=np.int8),
                    "occurred": (cal.days[d] * 86_400 + sec) * 1_000_000,
                    "style": REGION_STYLE[acc.region[a]].astype(np.int8),
                    "content": content.astype(np.int64),
                }
            )
        )
    return pl.concat(frames)


def _webinar_days(cal: _Calendar) -> np.ndarray:
    """1.0 on the monthly webinar day (the third Wednesday), else 0.0."""
    dom = pl.Series(cal.days.astype(np.int32)).cast(pl.Date).dt.day().to_numpy()
    return ((cal.weekday == 2) & (dom >= 15) & (dom <= 21)).astype(float)


def _finish_engagement(rng: Rng, raw: pl.DataFrame) -> pl.DataFrame:
    # two draws can land on the same user, content and second: one activity (see _finish_surveys)
    raw = (
        raw.sort("occurred", "acc", "kind", maintain_order=True)
        .unique(subset=["acc", "user", "kind", "content", "occurred"], keep="first", maintain_order=True)
        .with_columns(eid=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    )
    raw = _add_mess(rng, raw, 0.0)
    occurred_date = _utc("occurred")
    content = (
        pl.when(pl.col("kind") == 0)
        .then(pl.lit("webinar-") + occurred_date.dt.strftime("%Y-%m"))
        .when(pl.col("kind") == 1)
        .then(pl.lit("post-") + pl.col("content").cast(pl.String))
        .when(pl.col("kind") == 2)
        .then(pl.lit("kb-") + zfill("content", 4))
        .otherwise(pl.lit("case-study-") + occurred_date.dt.strftime("%Y") + pl.lit("-") + zfill("acc", 6))
    )
    return raw.select(
        activity_id=pl.lit("E-") + zfill("eid", 7),
        account_id=account_id_expr("ACC-", "acc", "ws"),
        user_id=pl.lit("U-") + zfill("acc", 6) + pl.lit("-") + zfill("user", 3),
        activity_type=lookup("kind", ACTIVITY_TYPES),
        occurred_at=iso_with_offset("occurred", "style", OFFSET_STYLES, 1),
        content_id=content,
    )


# --------------------------------------------------------------------------- CRM and truth


def _write_crm(rng: Rng, acc: _Accounts, cal: _Calendar, path: pathlib.Path) -> int:
    """The CRM export: one row per account (a few identical duplicates), synced daily."""
    n = len(acc)
    churned = acc.trajectory == CHURNED
    # most rows were touched by the last daily sync; churned ones when they were closed
    recent = cal.end_us - rng.integers(60, 86_400, n) * 1_000_000
    older = cal.end_us - rng.integers(2 * 86_400, 30 * 86_400, n) * 1_000_000
    closed_day = np.where(churned, acc.churn, cal.last)
    at_churn = (closed_day * 86_400 + rng.integers(0, 5 * 86_400, n)) * 1_000_000
    updated = np.where(rng.random(n) < 0.92, recent, older)
    updated = np.where(churned, np.minimum(at_churn, recent), updated)
    updated = updated // 1_000_000 * 1_000_000
    seats = acc.seats
    second = acc.user_num(np.arange(n), np.full(n, 2))
    raw = pl.DataFrame(
        {
            "acc": acc.num,
            "head": acc.name_head,
            "tail": acc.name_tail,
            "form": acc.name_form,
            "industry": acc.industry,
            "tier": acc.tier,
            "plan": acc.plan,
            "seats": seats,
            "arr": acc.arr.astype(np.float64),
            "csm": acc.csm,
            "champ1": acc.user_num(np.arange(n), np.ones(n, dtype=np.int64)),
            "champ2": np.where(acc.n_champions > 1, second, -1),
            "start": acc.start.astype(np.int32),
            "renewal": acc.renewal.astype(np.int32),
            "churn": np.where(churned, acc.churn, -1).astype(np.int32),
            "updated": updated,
            "style": np.where(rng.random(n) < 0.7, 2, 0).astype(np.int8),
        }
    )
    # identical duplicates (whitespace included) of a few distinct accounts, next to the original
    raw = raw.with_columns(ws=pl.Series(whitespace_codes(rng, n, WHITESPACE_SHARE)))
    n_dup = min(n, max(1, int(round(n * CRM_DUPLICATE_SHARE))))
    dup = rng.choice(n, size=n_dup, replace=False)
    raw = raw[np.sort(np.concatenate([np.arange(n), dup]), kind="stable")]
    # families for the parent roll-up: every 25th account is a parent of the three after it
    # (no random draw, so every other column stays as it was)
    raw = raw.with_columns(
        parent=pl.when((pl.col("acc") > PARENT_EVERY) & (pl.col("acc") % PARENT_EVERY).is_between(1, CHILDREN)).then(
            pl.col("acc") - pl.col("acc") % PARENT_EVERY
        )
    )
    acc6 = zfill("acc", 6)
    name = lookup("head", NAME_HEADS) + pl.lit(" ") + lookup("tail", NAME_TAILS)
    form = lookup("form", NAME_FORMS)
    champions = pl.lit("U-") + acc6 + pl.lit("-") + zfill("champ1", 3)
    frame = raw.select(
        account_id=account_id_expr("ACC-", "acc", "ws"),
        account_name=pl.when(form == "").then(name).otherwise(name + pl.lit(" ") + form),
        industry=pl.when(pl.col("industry") >= 0).then(lookup("industry", INDUSTRIES)),
        size_tier=lookup("tier", TIERS),
        plan=lookup("plan", PLANS),
        licensed_seats="seats",
        arr_usd="arr",
        csm_owner=pl.lit("csm.") + lookup("csm", CSM_NAMES) + pl.lit("@example.com"),
        parent_account_id=pl.when(pl.col("parent").is_not_null()).then(pl.lit("ACC-") + zfill("parent", 6)),
        champion_user_ids=pl.when(pl.col("champ2") > 0)
        .then(champions + pl.lit(";U-") + acc6 + pl.lit("-") + zfill("champ2", 3))
        .otherwise(champions),
        contract_start_date=pl.col("start").cast(pl.Date),
        renewal_date=pl.col("renewal").cast(pl.Date),
        churn_date=pl.when(pl.col("churn") >= 0).then(pl.col("churn").cast(pl.Date)),
        updated_at=iso_with_offset("updated", "style", OFFSET_STYLES, 1),
    )
    return _write_csv(frame, path)


def _csm_notes(rng: Rng, acc: _Accounts, cal: _Calendar) -> pl.DataFrame:
    """CSM sentiment notes from the CRM: red / yellow / green with a reason, following the hidden
    health with some noise (a CSM's judgement, not a measurement)."""
    n = len(acc.num)
    count = np.where(rng.random(n) < NOTED_SHARE, rng.integers(1, NOTES_MAX + 1, n), 0)
    a = np.repeat(np.arange(n), count)
    life_end = np.where(acc.trajectory == CHURNED, acc.churn, cal.last)
    first = np.maximum(acc.start, cal.last - NOTES_DAYS_BACK)[a]
    span = np.maximum(life_end[a] - first, 0)
    day = first + np.floor(rng.random(len(a)) * (span + 1)).astype(np.int64)
    keep = (day >= acc.start[a]) & (day <= life_end[a])
    a, day = a[keep], day[keep]
    h = _health(acc.take(a), day[:, None])[:, 0] if len(a) else np.zeros(0)
    judged = h + rng.normal(0.0, 0.12, len(a))
    sentiment = np.where(judged < 0.35, 0, np.where(judged < 0.6, 1, 2))
    reason = np.floor(rng.random(len(a)) * len(NOTE_REASONS[0])).astype(np.int64)
    seconds = rng.integers(8 * 3600, 19 * 3600, len(a))
    frame = pl.DataFrame(
        {
            "acc": acc.num[a],
            "sentiment": sentiment,
            "reason": reason,
            "recorded": (day * 86_400 + seconds) * 1_000_000,
            "csm": acc.csm[a],
            "ws": whitespace_codes(rng, len(a), WHITESPACE_SHARE),
        }
    ).sort("recorded", "acc")
    return frame.select(
        note_id=pl.lit("N-") + pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7),
        account_id=account_id_expr("ACC-", "acc", "ws"),
        recorded_at=pl.from_epoch("recorded", time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        sentiment=lookup("sentiment", SENTIMENTS),
        reason=(pl.col("sentiment") * len(NOTE_REASONS[0]) + pl.col("reason")).replace_strict(
            list(range(sum(len(r) for r in NOTE_REASONS))),
            [text for reasons in NOTE_REASONS for text in reasons],
            return_dtype=pl.String,
        ),
        recorded_by=pl.lit("csm.") + lookup("csm", CSM_NAMES) + pl.lit("@example.com"),
    )


def _truth(acc: _Accounts, cal: _Calendar) -> pl.DataFrame:
    """Hidden truth per account, for validation only.

    health_at_start is h on the first day of the window or of the contract, whichever is later;
    health_at_as_of is h on as_of, and 0.0 for accounts that have churned.
    """
    first = np.maximum(acc.start, cal.day0)[:, None]
    at_start = _health(acc, first)[:, 0]
    at_end = np.where(acc.trajectory == CHURNED, 0.0, _health(acc, np.array([[cal.last]]))[:, 0])
    return pl.DataFrame(
        {
            "acc": acc.num,
            "health_at_start": np.round(at_start, 6),
            "health_at_as_of": np.round(at_end, 6),
            "trajectory": acc.trajectory,
            "churn": np.where(acc.trajectory == CHURNED, acc.churn, -1).astype(np.int32),
        }
    ).select(
        account_id=pl.lit("ACC-") + zfill("acc", 6),
        health_at_start="health_at_start",
        health_at_as_of="health_at_as_of",
        trajectory=lookup("trajectory", TRAJECTORIES),
        churn_date=pl.when(pl.col("churn") >= 0).then(pl.col("churn").cast(pl.Date)),
    )


# --------------------------------------------------------------------------- shared helpers


def _add_mess(rng: Rng, raw: pl.DataFrame, dup_share: float) -> pl.DataFrame:
    """Stray whitespace codes on ~1% of rows, and `dup_share` exact duplicates next to their original."""
    raw = raw.with_columns(ws=pl.Series(whitespace_codes(rng, raw.height, WHITESPACE_SHARE)))
    return raw[duplicate_rows(rng, raw.height, dup_share)]


def _utc(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _conform(frame: pl.DataFrame, spec: SourceSpec) -> pl.DataFrame:
    """Exactly the contract's columns, in its order, with its types."""
    return frame.select([pl.col(c).cast(t) for c, t in spec.columns.items()])


def _write_csv(frame: pl.DataFrame, path: pathlib.Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path, include_header=True, separator=",", line_terminator="\n")
    return frame.height


def _write_ndjson(frame: pl.DataFrame, path: pathlib.Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(path)
    return frame.height
