"""Deterministic demo data for a second example product: "Ledgerly", invoicing for small businesses.

Why this exists: the first demo (`generator.py`) is a data-integration SaaS with a few hundred
large contracts, CSMs, tickets and surveys. A health-score platform that only ever ran on that one
shape would quietly assume it. Ledgerly is the opposite case: thousands of small self-serve
accounts on annual plans, no support or survey data, only a subscriptions export and a stream of
in-app events, and churn driven mainly by recency and frequency of use (a business that stops
invoicing leaves). Running the platform on both keeps it honest about what is product-specific.

What it writes (paths relative to the landing directory):
- `subscriptions/accounts.csv` (source `subscriptions`): one row per account, with plan, seats,
  MRR, an account manager for some business-plan accounts, signup / renewal / cancellation dates;
- `events/part-00000.csv`, ... (source `app_events`): one CSV part per chunk of
  `CHUNK_ACCOUNTS` accounts, 365 days of events ending with `as_of`;
- `../demo_truth/ledgerly_truth.parquet`: the hidden truth (latent pattern, churn, engagement),
  for validation only; the scoring code never reads it;
- `_demo_manifest.json`: removed first and written last, so its presence means the run completed.

How behaviour is made: every account has a hidden daily engagement h(t) in [0, 1]. Daily event
counts are Poisson(base rate by plan and seats x activity x h x weekday x season), split over the
event vocabulary with a mix that shifts with h (healthy accounts sync bank feeds, record payments
and export reports; fading ones mostly log in and draft invoices), and spread over ~seats x h
distinct users. Churn is decided per account from its engagement level and plan (a constant
hazard over its exposure); a churner's h then fades for 30-120 days before it cancels (~15%
cancel abruptly after a short dip). Noise is deliberate so that no single signal is enough:
healthy accounts take 2-4 week holidays (recency misleads), some solo businesses invoice only a
few times a month for years (frequency misleads), and activity levels differ between businesses.

Deliberate real-world mess (normal loading must absorb it; none of it should fail a check):
- 2-5 identical duplicate rows in accounts.csv, ~0.2% exact duplicate event rows (same
  event_uuid, same values), at least one per events part;
- ~1% of event account_id values with stray leading/trailing spaces, at least one per part;
- business names with commas, double quotes and non-ASCII text (CSV quoting);
- timestamps as strings with mixed UTC offsets ("Z", "+00:00", "+01:00", ...): events in the
  account's local standard-time offset (fixed per country, no DST), `updated_at` in the billing
  system's mix of "Z", "+00:00" and "+01:00";
- empty optional values (account_manager, cancelled_on, amount_usd on non-money events).
Nothing refers to an unknown account, no timestamp is at or after the end of the as-of day (UTC),
no event falls outside [signup, cancellation) by either its UTC or its local date, and no
required value is empty.

Determinism: output is a pure function of (accounts, seed, as_of). One
`numpy.random.default_rng(seed)` is split with `spawn` into one stream per purpose and per chunk,
no wall clock is read, row orders are fixed and writer settings are fixed, so the same arguments
give byte-identical files. Account-days are numpy matrices one chunk at a time, so memory stays
bounded (50,000 accounts is ten chunks).
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
from cs_assets.demo.generator import DemoSummary

PRODUCT = "ledgerly"
GENERATOR_NAME = "cs-health-demo-ledgerly"
GENERATOR_VERSION = 1
DEMO_AS_OF = dt.date(2026, 10, 31)
TRUTH_DIR = "demo_truth"
TRUTH_FILE = "ledgerly_truth.parquet"

SUBSCRIPTIONS = "subscriptions"
APP_EVENTS = "app_events"
SUBSCRIPTIONS_PATH = "subscriptions/accounts.csv"
EVENTS_DIR = "events"
SUBSCRIPTION_COLUMNS = (
    "account_id", "business_name", "country", "plan", "seats", "mrr_usd", "account_manager",
    "signup_date", "renewal_date", "cancelled_on", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("event_uuid", "account_id", "actor_id", "event_name", "event_time", "amount_usd", "channel")

HISTORY_DAYS = 365  # the event window: the 365 days ending with as_of (inclusive)
PRE_WINDOW_DAYS = 3 * 365  # older accounts signed up within this many days before the window
CHUNK_ACCOUNTS = 5000  # accounts per events part; bounds memory for large runs

_EPOCH = dt.date(1970, 1, 1)
_DAY_S = 86_400
_NEVER = 10**9  # "never cancels" as an epoch day; small enough to stay exact in float64
_NO_LULL = -(10**9)

Rng = np.random.Generator
Arr = np.ndarray

PLANS = ("solo", "team", "business")
SOLO, TEAM, BUSINESS = range(3)
PLAN_SHARE = (0.70, 0.24, 0.06)  # many small self-serve accounts
PLAN_BASE_MRR = np.array([9.0, 25.0, 99.0])
PLAN_SEAT_MRR = np.array([9.0, 12.0, 15.0])
DISCOUNTS = (1.0, 0.9, 0.8)  # annual-prepay promotions
DISCOUNT_SHARE = (0.65, 0.25, 0.10)
ACCOUNT_MANAGER_SHARE = 0.6  # of business-plan accounts; the others are fully self-serve

# ISO-2 countries; the arrays after them are indexed the same way
COUNTRIES = ("GB", "DE", "FR", "NL", "ES", "IE", "SE", "FI", "US", "JP")
COUNTRY_SHARE = (0.26, 0.14, 0.10, 0.08, 0.07, 0.05, 0.05, 0.03, 0.14, 0.08)
OFFSET_STYLES = (  # (suffix, minutes east of UTC)
    ("Z", 0), ("+00:00", 0), ("+01:00", 60), ("+02:00", 120), ("-05:00", -300), ("+09:00", 540),
)  # fmt: skip
COUNTRY_STYLE = np.array([1, 2, 2, 2, 2, 0, 2, 3, 4, 5])  # standard time all year: the exporter ignores DST
UPDATED_STYLE_SHARE = (0.60, 0.25, 0.15)  # billing system: "Z", "+00:00", "+01:00"
LEGAL_FORMS = ("", " Ltd", " GmbH", " SARL", " B.V.", " S.L.", " AB", " Oy", " LLC", ", Inc.", " K.K.")
COUNTRY_FORMS = np.array(  # two legal forms per country (the same one twice where there is one)
    [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [1, 1], [6, 6], [7, 7], [8, 9], [10, 10]]
)
SOLE_TRADER_SHARE = 0.3  # no legal form in the name

NAME_HEADS = (
    "Harper", "Müller", "Okafor", "Lindqvist", "Dubois", "García", "O'Neill", "van Dijk",
    "Kowalski", "Rossi", "Nakamura", "Björk", "Søndergaard", "Fernández", "Patel", "Moreau",
    "Schäfer", "Murphy", "Jansen", "Virtanen", "Ashford", "Brennan", "Ålund", "Côté",
)  # fmt: skip
NAME_TRADES = (
    "Bakery", "Plumbing", "Design Studio", "Consulting", "Carpentry", "Bookkeeping", "Photography",
    "Landscaping", "Electrical", "Catering", "Physiotherapy", "Tutoring", "Architects",
    "Coffee Roasters", "Dental Care", "Translations", "Bike Repairs", "Florist",
)  # fmt: skip
NAME_NICKS = ("Zur Post", "The Corner", "Blue Door", "Sunrise", "Nordlys", "El Faro", "Le Petit")
JP_NAMES = ("さくら会計事務所", "山田デザイン", "ひかり税理士法人", "青葉工務店", "みどり写真館", "Café Kaede")
# name shapes: plain, "A, B & Partners" (comma), 'Trade "Nick"' (quotes); JP accounts may use JP_NAMES
NAME_SHAPE_SHARE = (0.80, 0.12, 0.08)
JP_NAME_SHARE = 0.5
ACCOUNT_MANAGERS = (
    "jane.doe", "amir.haddad", "lena.fischer", "tomas.novak", "chloe.martin", "kenji.mori",
    "sofia.lind", "liam.walsh",
)  # fmt: skip

NEW_SHARE = 0.15  # accounts that sign up inside the window
RAMP_DAYS = 30  # a new account reaches its usual engagement over this many days ...
RAMP_FLOOR = 0.35  # ... starting from this share of it

# churn: constant hazard over [signup + MIN_TENURE, as_of + FUTURE_DAYS]; churners whose date falls
# after as_of are still live at as_of and visibly fading (the "declining" pattern)
MIN_TENURE_DAYS = 30
FUTURE_DAYS = 90
HAZARD_INTERCEPT = -1.3  # log of the yearly hazard at the mean engagement level, solo plan
HAZARD_LEVEL_SLOPE = 4.5  # per unit of engagement level below the mean
HAZARD_PLAN = np.array([0.0, -0.35, -0.8])  # bigger teams are stickier
HAZARD_NOISE = 0.6  # reasons for leaving the data does not show
LEVEL_MEAN = 0.65
RENEWAL_TIMED_SHARE = 0.35  # churners who cancel in the 30 days before their renewal reminder
ABRUPT_SHARE = np.array([0.18, 0.10, 0.04])  # by plan: mostly small businesses that close overnight

PATTERNS = ("stable", "growing", "lull", "steady_low", "declining", "churn_gradual", "churn_abrupt")
STABLE, GROWING, LULL, STEADY_LOW, DECLINING, CHURN_GRADUAL, CHURN_ABRUPT = range(7)
GROWING_SHARE = 0.15
LULL_SHARE = 0.18
STEADY_LOW_SHARE = 0.12  # of non-churning solo and team accounts

# events
EVENT_NAMES = (
    "login", "invoice_created", "invoice_sent", "payment_received", "expense_logged",
    "report_exported", "bank_feed_synced", "client_added", "user_invited",
)  # fmt: skip
(LOGIN, INVOICE_CREATED, INVOICE_SENT, PAYMENT_RECEIVED, EXPENSE_LOGGED, REPORT_EXPORTED,
 BANK_FEED_SYNCED, CLIENT_ADDED, USER_INVITED) = range(9)  # fmt: skip
CHANNELS = ("web", "mobile", "api")
BASE_RATE = np.array([1.0, 4.0, 12.0])  # events per day at h = 1, by plan, for a typical seat count
TYPICAL_SEATS = np.array([1.0, 5.0, 20.0])
SEAT_ELASTICITY = np.array([0.2, 0.6, 0.5])
WEEKDAY_FACTOR = np.array([1.18, 1.20, 1.20, 1.15, 1.02, 0.15, 0.10])  # Monday first, mean 1
HOLIDAY_FACTOR = 0.35  # 23 Dec - 2 Jan
INVOICE_RUN_FACTOR = 1.8  # invoices pile up in the last 3 and first 2 days of a month
DAILY_NOISE_SIGMA = 0.3  # busy and quiet days beyond Poisson noise
# share of each event name in the mix is (base + slope * h), times the account's taste; bank
# feeds of a fading account stop syncing (bank consents lapse unless someone renews them)
MIX_BASE = np.array([0.50, 0.22, 0.05, 0.01, 0.04, 0.005, 0.0, 0.01, 0.002])
MIX_SLOPE = np.array([-0.22, -0.04, 0.12, 0.13, 0.08, 0.06, 0.14, 0.02, 0.006])
TASTE_SIGMA = 0.35
EXPENSES_SHARE = 0.75  # accounts that log expenses at all
BANK_FEED_BASE, BANK_FEED_SLOPE = 0.35, 0.5  # P(bank feed connected) = base + slope * level
CHANNEL_SHARE = np.array(  # web, mobile, api per event name
    [
        [0.62, 0.38, 0.00],
        [0.80, 0.17, 0.03],
        [0.78, 0.15, 0.07],
        [0.25, 0.05, 0.70],  # payments mostly arrive from the payment provider
        [0.40, 0.60, 0.00],  # receipts are snapped on the phone
        [0.95, 0.05, 0.00],
        [0.10, 0.02, 0.88],  # bank feeds mostly sync on their own
        [0.85, 0.15, 0.00],
        [0.90, 0.10, 0.00],
    ]
)
LOCAL_HOUR = np.array(  # mean and sd of the local hour of day per event name
    [[9.5, 2.5], [11.0, 2.8], [11.5, 2.8], [13.0, 4.0], [14.0, 4.0], [15.5, 2.5], [5.0, 1.5], [11.0, 3.0], [10.5, 2.5]]
)
OWNER_EVENTS = (BANK_FEED_SYNCED, USER_INVITED)  # attributed to the owner (user 01)
INVOICE_MEDIAN = np.array([420.0, 1100.0, 2600.0])  # by plan, USD
EXPENSE_MEDIAN = 40.0
DUPLICATE_SHARE = 0.002
WHITESPACE_SHARE = 0.01
SUBSCRIPTION_DUPLICATE_SHARE = 0.001  # clipped to 2-5 rows


@dataclass(frozen=True)
class _Calendar:
    """The event window as epoch days, and the exclusive upper bound of all timestamps."""

    as_of: dt.date
    day0: int  # first day of the window (epoch day)
    last: int  # as_of (epoch day)
    days: Arr  # day0..last
    weekday: Arr  # 0 = Monday
    season: Arr  # holiday dip factor per day
    invoice_run: Arr  # month-end invoicing factor per day
    end_s: int  # midnight UTC after as_of, epoch seconds


@dataclass(frozen=True)
class _Accounts:
    """Account-level parameters, one entry per account (hidden ones included)."""

    num: Arr  # 1..N
    plan: Arr
    seats: Arr
    mrr: Arr
    country: Arr
    start: Arr  # signup, epoch day
    cancel: Arr  # cancellation epoch day (_NEVER: none by as_of + FUTURE_DAYS)
    churned: Arr  # cancelled inside the window
    pattern: Arr
    level: Arr  # usual engagement
    h_from: Arr  # growing accounts: engagement before the growth
    grow_from: Arr  # epoch day
    grow_days: Arr
    decline_days: Arr  # length of the fade before cancelling
    decline_end: Arr  # share of engagement left on the cancellation day
    decline_power: Arr  # shape of the fade (> 1: fast early)
    lull_from: Arr  # epoch day (_NO_LULL: none)
    lull_days: Arr
    lull_depth: Arr  # engagement multiplier during the lull
    wobble_amp: Arr
    wobble_period: Arr
    wobble_phase: Arr
    activity: Arr  # how busy the business is, independent of engagement
    base_rate: Arr  # events per day at h = 1
    adoption: Arr  # share of seats active at h = 1
    taste: Arr  # (N, len(EVENT_NAMES)) multipliers on the event mix; 0 = feature unused
    invoice_median: Arr

    def __len__(self) -> int:
        return len(self.num)

    def take(self, sl: slice) -> _Accounts:
        return _Accounts(**{f.name: getattr(self, f.name)[sl] for f in dataclasses.fields(self)})


def generate_ledgerly_data(
    landing_dir: pathlib.Path,
    accounts: int = 5000,
    seed: int = 7,
    as_of: dt.date = DEMO_AS_OF,
) -> DemoSummary:
    """Write the Ledgerly landing directory (and its hidden truth next to it); return a summary.

    Same (accounts, seed, as_of) gives byte-identical files.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    landing_dir = pathlib.Path(landing_dir)
    manifest_path = begin_landing(landing_dir)

    cal = _calendar(as_of)
    n_chunks = math.ceil(accounts / CHUNK_ACCOUNTS)
    account_rng, subscription_rng, *chunk_rngs = np.random.default_rng(seed).spawn(2 + n_chunks)
    acc = _draw_accounts(account_rng, accounts, cal)

    rows = {SUBSCRIPTIONS: _write_subscriptions(subscription_rng, acc, cal, landing_dir / SUBSCRIPTIONS_PATH)}

    events_dir = landing_dir / EVENTS_DIR
    events_dir.mkdir(parents=True, exist_ok=True)
    # a smaller rerun would otherwise leave an earlier run's parts to be loaded with it
    for stale in events_dir.glob("part-*.csv"):
        stale.unlink()
    event_rows = 0
    next_event = 1
    for i, chunk_rng in enumerate(chunk_rngs):
        chunk = acc.take(slice(i * CHUNK_ACCOUNTS, (i + 1) * CHUNK_ACCOUNTS))
        frame, next_event = _event_chunk(chunk_rng, chunk, cal, next_event)
        event_rows += _write_csv(frame, events_dir / f"part-{i:05d}.csv")
        del frame
    rows[APP_EVENTS] = event_rows

    write_parquet(_truth(acc, cal), landing_dir.parent / TRUTH_DIR / TRUTH_FILE)

    manifest = {
        "generator": GENERATOR_NAME,
        "product": PRODUCT,
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
        churned_accounts=int(acc.churned.sum()),
    )


# --------------------------------------------------------------------------- calendar and dates


def _calendar(as_of: dt.date) -> _Calendar:
    last = (as_of - _EPOCH).days
    days = np.arange(last - HISTORY_DAYS + 1, last + 1, dtype=np.int64)
    dates = pl.Series(days.astype(np.int32)).cast(pl.Date)
    month, dom = dates.dt.month().to_numpy(), dates.dt.day().to_numpy()
    month_len = dates.dt.month_end().dt.day().to_numpy()
    holiday = ((month == 12) & (dom >= 23)) | ((month == 1) & (dom <= 2))
    invoice_run = (dom > month_len - 3) | (dom <= 2)
    return _Calendar(
        as_of=as_of,
        day0=int(days[0]),
        last=last,
        days=days,
        weekday=(days + 3) % 7,  # 1970-01-01 was a Thursday
        season=np.where(holiday, HOLIDAY_FACTOR, 1.0),
        invoice_run=np.where(invoice_run, INVOICE_RUN_FACTOR, 1.0),
        end_s=(last + 1) * _DAY_S,
    )


# --------------------------------------------------------------------------- accounts


def _draw_accounts(rng: Rng, n: int, cal: _Calendar) -> _Accounts:
    """Plans, dates, churn and the parameters of every account's hidden engagement."""
    plan = rng.choice(3, size=n, p=PLAN_SHARE)
    u = rng.random(n)
    # skewed to the low end of each plan's seat range: few big teams
    seats = np.select(
        [plan == SOLO, plan == TEAM],
        [1 + (u < 0.2), np.rint(3 * (10 / 3) ** (u**1.6))],
        np.rint(10 * 6 ** (u**1.8)),
    ).astype(np.int64)
    discount = np.array(DISCOUNTS)[rng.choice(len(DISCOUNTS), size=n, p=DISCOUNT_SHARE)]
    mrr = np.round((PLAN_BASE_MRR[plan] + PLAN_SEAT_MRR[plan] * seats) * discount, 2)
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE)

    new = rng.random(n) < NEW_SHARE
    start = np.where(
        new, cal.day0 + rng.integers(0, HISTORY_DAYS, n), cal.day0 - rng.integers(1, PRE_WINDOW_DAYS + 1, n)
    )
    level = 0.2 + 0.75 * rng.beta(3.0, 2.0, n)
    activity = rng.lognormal(-0.6, 0.45, n)

    # churn: constant yearly hazard, higher for low engagement and small plans
    log_hazard = (
        HAZARD_INTERCEPT
        + HAZARD_LEVEL_SLOPE * (LEVEL_MEAN - level)
        + HAZARD_PLAN[plan]
        + rng.normal(0.0, HAZARD_NOISE, n)
    )
    lo = np.maximum(cal.day0, start + MIN_TENURE_DAYS)
    hi = cal.last + FUTURE_DAYS
    exposure = np.clip(hi - lo + 1, 0, None)
    p_churn = 1.0 - np.exp(-np.exp(log_hazard) * exposure / 365)
    destined = rng.random(n) < p_churn
    uniform_day = lo + np.floor(rng.random(n) * np.maximum(exposure, 1)).astype(np.int64)
    # annual plans: the renewal reminder prompts some to cancel in the month before it
    # (the nearest anniversary, not the next one, so that dates do not drift towards the end)
    following = next_anniversary(start, uniform_day - 1)
    preceding = add_years(following, -np.ones(n, dtype=np.int64))
    anniversary = np.where(following - uniform_day <= uniform_day - preceding, following, preceding)
    before_renewal = anniversary - rng.integers(0, 31, n)
    renewal_timed = (rng.random(n) < RENEWAL_TIMED_SHARE) & (before_renewal >= lo) & (before_renewal <= hi)
    cancel = np.where(destined, np.where(renewal_timed, before_renewal, uniform_day), _NEVER)
    churned = cancel <= cal.last

    abrupt = destined & (rng.random(n) < ABRUPT_SHARE[plan])
    decline_days = np.where(abrupt, rng.integers(4, 15, n), rng.integers(30, 121, n)).astype(np.float64)
    decline_end = np.where(abrupt, rng.uniform(0.15, 0.5, n), rng.uniform(0.0, 0.06, n))
    decline_power = rng.uniform(1.2, 2.5, n)

    # base patterns of the accounts that stay
    v = rng.random(n)
    pattern = np.where(v < GROWING_SHARE, GROWING, np.where(v < GROWING_SHARE + LULL_SHARE, LULL, STABLE))
    steady_low = (plan != BUSINESS) & (rng.random(n) < STEADY_LOW_SHARE)
    pattern = np.where(steady_low & (pattern == STABLE), STEADY_LOW, pattern)
    pattern = np.where(destined, STABLE, pattern)

    growing = pattern == GROWING
    h_from = np.where(growing, level * rng.uniform(0.35, 0.7, n), level)
    grow_from = np.where(growing, cal.last - rng.uniform(60, 420, n), 0.0)
    grow_days = rng.uniform(60, 240, n)

    lull = pattern == LULL
    lull_from = np.where(lull, rng.integers(cal.day0 - 14, cal.last - 5, n), _NO_LULL)
    lull_days = rng.integers(14, 29, n)
    lull_depth = rng.uniform(0.0, 0.15, n)

    low = pattern == STEADY_LOW
    # a small business that invoices a few times a month, engaged but rarely busy, for years
    level = np.where(low, rng.uniform(0.55, 0.9, n), level)
    activity = np.where(low, rng.uniform(0.1, 0.3, n), activity)
    start = np.where(low & ~new, cal.day0 - rng.integers(365, PRE_WINDOW_DAYS + 1, n), start)

    fading = destined & ~churned & (cancel - decline_days <= cal.last)
    pattern = np.where(fading, DECLINING, pattern)
    pattern = np.where(churned, np.where(abrupt, CHURN_ABRUPT, CHURN_GRADUAL), pattern)

    n_events = len(EVENT_NAMES)
    taste = rng.lognormal(0.0, TASTE_SIGMA, (n, n_events))
    taste[:, EXPENSE_LOGGED] *= rng.random(n) < EXPENSES_SHARE
    taste[:, BANK_FEED_SYNCED] *= rng.random(n) < BANK_FEED_BASE + BANK_FEED_SLOPE * level
    taste[:, USER_INVITED] *= np.where(seats > 1, 1.0, 0.3)  # one-seat owners only invite their accountant
    base_rate = BASE_RATE[plan] * (seats / TYPICAL_SEATS[plan]) ** SEAT_ELASTICITY[plan]
    return _Accounts(
        num=np.arange(1, n + 1, dtype=np.int64),
        plan=plan,
        seats=seats,
        mrr=mrr,
        country=country,
        start=start.astype(np.int64),
        cancel=cancel.astype(np.int64),
        churned=churned,
        pattern=pattern,
        level=level,
        h_from=h_from,
        grow_from=grow_from,
        grow_days=grow_days,
        decline_days=decline_days,
        decline_end=decline_end,
        decline_power=decline_power,
        lull_from=lull_from.astype(np.int64),
        lull_days=lull_days,
        lull_depth=lull_depth,
        wobble_amp=rng.uniform(0.02, 0.06, n),
        wobble_period=rng.uniform(25, 90, n),
        wobble_phase=rng.uniform(0, 2 * np.pi, n),
        activity=activity,
        base_rate=base_rate,
        adoption=rng.uniform(0.5, 1.0, n),
        taste=taste,
        invoice_median=INVOICE_MEDIAN[plan] * rng.lognormal(0.0, 0.5, n),
    )


def _engagement(acc: _Accounts, days: Arr) -> Arr:
    """Hidden engagement h(t) in [0, 1]: rows are accounts, `days` (epoch days) broadcasts.

    Pass `cal.days[None, :]` for an account x day matrix, or an (n, k) matrix of days per account.
    """
    t = np.asarray(days, dtype=np.float64)
    col = lambda x: x[:, None]  # noqa: E731
    x = np.clip((t - col(acc.grow_from)) / col(acc.grow_days), 0.0, 1.0)
    h = col(acc.h_from) + col(acc.level - acc.h_from) * (x * x * (3 - 2 * x))
    h = h + col(acc.wobble_amp) * np.sin(2 * np.pi * t / col(acc.wobble_period) + col(acc.wobble_phase))
    y = np.clip((t - col(acc.cancel - acc.decline_days)) / col(acc.decline_days), 0.0, 1.0)
    h = h * (col(acc.decline_end) + col(1 - acc.decline_end) * (1 - y) ** col(acc.decline_power))
    in_lull = (t >= col(acc.lull_from)) & (t < col(acc.lull_from + acc.lull_days))
    h = h * np.where(in_lull, col(acc.lull_depth), 1.0)
    h = h * np.clip(RAMP_FLOOR + (1 - RAMP_FLOOR) * (t - col(acc.start)) / RAMP_DAYS, 0.0, 1.0)
    return np.clip(h, 0.0, 1.0)


# --------------------------------------------------------------------------- events


def _pick(rng: Rng, shares: Arr) -> Arr:
    """One category per row of `shares` (rows sum to 1)."""
    u = rng.random(len(shares))
    return np.minimum((u[:, None] >= np.cumsum(shares, axis=1)).sum(axis=1), shares.shape[1] - 1)


def _event_chunk(rng: Rng, acc: _Accounts, cal: _Calendar, first_event: int) -> tuple[pl.DataFrame, int]:
    """All events of one chunk of accounts in the export layout; returns the next free event number."""
    days = cal.days[None, :]
    h = _engagement(acc, days)
    live = (days >= acc.start[:, None]) & (days < acc.cancel[:, None])
    calendar = (WEEKDAY_FACTOR[cal.weekday] * cal.season)[None, :]
    noise = rng.lognormal(-0.5 * DAILY_NOISE_SIGMA**2, DAILY_NOISE_SIGMA, h.shape)
    lam = (acc.base_rate * acc.activity)[:, None] * h * calendar * noise * live
    # the mix is linear in h, so its normaliser is too: no (accounts x days x names) array
    norm = (acc.taste @ MIX_BASE)[:, None] + (acc.taste @ MIX_SLOPE)[:, None] * h
    users = np.clip(np.rint(acc.seats[:, None] * acc.adoption[:, None] * h), 1, acc.seats[:, None])
    del noise

    parts: list[tuple[Arr, Arr, Arr]] = []
    for k in range(len(EVENT_NAMES)):
        lam_k = lam * (MIX_BASE[k] + MIX_SLOPE[k] * h) * acc.taste[:, k, None] / norm
        if k in (INVOICE_CREATED, INVOICE_SENT):
            lam_k = lam_k * cal.invoice_run[None, :]
        a, d = expand(rng.poisson(lam_k))
        parts.append((a, d, np.full(len(a), k, dtype=np.int8)))
    a = np.concatenate([p[0] for p in parts])
    d = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([p[2] for p in parts])
    del parts, lam, norm
    n = len(a)

    # local time of day on the local calendar day; the UTC instant follows from the country's offset
    hour = LOCAL_HOUR[kind]
    local_sec = np.clip(rng.normal(hour[:, 0] * 3600, hour[:, 1] * 3600), 0, _DAY_S - 1).astype(np.int64)
    style = COUNTRY_STYLE[acc.country[a]]
    offset_s = np.array([m for _, m in OFFSET_STYLES])[style] * 60
    instant = cal.days[d] * _DAY_S + local_sec - offset_s
    utc_day = instant // _DAY_S
    # the live mask bounds the local day; drop the few events whose UTC day crosses a boundary,
    # so that by either calendar every event is inside the window and the account's life
    keep = (utc_day >= np.maximum(acc.start[a], cal.day0)) & (utc_day < acc.cancel[a]) & (instant < cal.end_s)

    # the owner (user 01) does most of the work; active users grow with seats and engagement
    rank = 1 + np.floor(users[a, d] * rng.random(n) ** 1.5).astype(np.int64)
    rank = np.where(np.isin(kind, OWNER_EVENTS), 1, rank)
    channel = _pick(rng, CHANNEL_SHARE[kind])
    cents = _amount_cents(rng, acc, a, kind)

    order = np.lexsort((kind[keep], acc.num[a[keep]], instant[keep]))
    cols = {
        "acc": acc.num[a[keep]][order],
        "user": rank[keep][order],
        "kind": kind[keep][order],
        "instant": instant[keep][order],
        "style": style[keep][order].astype(np.int8),
        "cents": cents[keep][order],
        "channel": channel[keep][order].astype(np.int8),
    }
    n = len(order)
    cols["seq"] = np.arange(first_event, first_event + n, dtype=np.int64)
    # mess: whitespace is drawn before duplicating so that duplicates stay exact copies
    ws = whitespace_codes(rng, n, WHITESPACE_SHARE)
    rows = duplicate_rows(rng, n, DUPLICATE_SHARE)
    raw = pl.DataFrame({**{k: v[rows] for k, v in cols.items()}, "ws": ws[rows]})
    frame = raw.select(
        event_uuid=pl.lit("E-") + zfill("seq", 8),
        account_id=account_id_expr("LDG-", "acc", "ws"),
        actor_id=pl.lit("U-") + zfill("acc", 6) + pl.lit("-") + zfill("user", 2),
        event_name=lookup("kind", EVENT_NAMES),
        event_time=iso_with_offset("instant", "style", OFFSET_STYLES, 1_000_000),
        amount_usd=pl.when(pl.col("cents") >= 0).then(pl.col("cents") / 100),
        channel=lookup("channel", CHANNELS),
    )
    return frame, first_event + n


def _amount_cents(rng: Rng, acc: _Accounts, a: Arr, kind: Arr) -> Arr:
    """USD cents on money events (invoices, payments, expenses), -1 on the others."""
    n = len(a)
    invoice = np.exp(rng.normal(np.log(acc.invoice_median[a]), 0.6, n))
    payment = np.exp(rng.normal(np.log(acc.invoice_median[a]), 0.7, n))
    expense = np.exp(rng.normal(np.log(EXPENSE_MEDIAN), 1.0, n))
    usd = np.select(
        [np.isin(kind, (INVOICE_CREATED, INVOICE_SENT)), kind == PAYMENT_RECEIVED, kind == EXPENSE_LOGGED],
        [invoice, payment, expense],
        -1.0,
    )
    return np.where(usd >= 0, np.maximum(np.rint(usd * 100), 100), -1).astype(np.int64)


# --------------------------------------------------------------------------- subscriptions and truth


def _write_subscriptions(rng: Rng, acc: _Accounts, cal: _Calendar, path: pathlib.Path) -> int:
    """The subscriptions export: one row per account and a few identical duplicate rows."""
    n = len(acc)
    live = ~acc.churned
    renewal = next_anniversary(acc.start, np.where(live, cal.last, acc.cancel))
    start_s = acc.start * _DAY_S
    # live rows were touched by the last nightly sync or by an older edit; cancelled ones at closing
    recent = cal.end_s - rng.integers(60, 3 * _DAY_S, n)
    edited = start_s + np.floor(rng.random(n) * (cal.end_s - start_s)).astype(np.int64)
    at_close = acc.cancel * _DAY_S + rng.integers(0, 2 * _DAY_S, n)
    updated = np.where(live, np.where(rng.random(n) < 0.85, recent, edited), at_close)
    updated = np.clip(updated, start_s, cal.end_s - 1)

    shape = rng.choice(len(NAME_SHAPE_SHARE), size=n, p=NAME_SHAPE_SHARE)
    jp_name = (np.array(COUNTRIES)[acc.country] == "JP") & (rng.random(n) < JP_NAME_SHARE)
    form = COUNTRY_FORMS[acc.country, rng.integers(0, 2, n)]
    raw = pl.DataFrame(
        {
            "acc": acc.num,
            "shape": np.where(jp_name, 3, shape).astype(np.int8),
            "head": rng.integers(0, len(NAME_HEADS), n),
            "head2": rng.integers(0, len(NAME_HEADS), n),
            "trade": rng.integers(0, len(NAME_TRADES), n),
            "nick": rng.integers(0, len(NAME_NICKS), n),
            "jp": rng.integers(0, len(JP_NAMES), n),
            "form": np.where(rng.random(n) < SOLE_TRADER_SHARE, 0, form),
            "country": acc.country,
            "plan": acc.plan,
            "seats": acc.seats,
            "mrr": acc.mrr,
            "am": np.where(
                (acc.plan == BUSINESS) & (rng.random(n) < ACCOUNT_MANAGER_SHARE),
                rng.integers(0, len(ACCOUNT_MANAGERS), n),
                -1,
            ),
            "start": acc.start.astype(np.int32),
            "renewal": renewal.astype(np.int32),
            "cancel": np.where(acc.churned, acc.cancel, -1).astype(np.int32),
            "updated": updated,
            "style": rng.choice(len(UPDATED_STYLE_SHARE), size=n, p=UPDATED_STYLE_SHARE).astype(np.int8),
        }
    )
    n_dup = int(np.clip(round(n * SUBSCRIPTION_DUPLICATE_SHARE), 2, 5))
    dup = rng.choice(n, size=n_dup, replace=n < n_dup)
    # a re-sync artefact: the copy sits right after the original
    raw = raw[np.sort(np.concatenate([np.arange(n), dup]), kind="stable")]
    head, trade, form = lookup("head", NAME_HEADS), lookup("trade", NAME_TRADES), lookup("form", LEGAL_FORMS)
    name = (
        pl.when(pl.col("shape") == 0)
        .then(head + pl.lit(" ") + trade + form)
        .when(pl.col("shape") == 1)
        .then(head + pl.lit(", ") + lookup("head2", NAME_HEADS) + pl.lit(" & Partners") + form)
        .when(pl.col("shape") == 2)
        .then(trade + pl.lit(' "') + lookup("nick", NAME_NICKS) + pl.lit('"') + form)
        .otherwise(lookup("jp", JP_NAMES))
    )
    frame = raw.select(
        account_id=pl.lit("LDG-") + zfill("acc", 6),
        business_name=name,
        country=lookup("country", COUNTRIES),
        plan=lookup("plan", PLANS),
        seats="seats",
        mrr_usd="mrr",
        account_manager=pl.when(pl.col("am") >= 0).then(lookup("am", ACCOUNT_MANAGERS) + pl.lit("@ledgerly.example")),
        signup_date=pl.col("start").cast(pl.Date),
        renewal_date=pl.col("renewal").cast(pl.Date),
        cancelled_on=pl.when(pl.col("cancel") >= 0).then(pl.col("cancel").cast(pl.Date)),
        updated_at=iso_with_offset("updated", "style", OFFSET_STYLES, 1_000_000),
    )
    return _write_csv(frame, path)


def _truth(acc: _Accounts, cal: _Calendar) -> pl.DataFrame:
    """Hidden truth per account, for validation only.

    engagement_30d / engagement_90d: mean h over the last 30 / 90 days the account was live,
    ending with as_of, or with the day before its cancellation for accounts that cancelled.
    """
    last_live = np.where(acc.churned, acc.cancel - 1, cal.last)
    days = last_live[:, None] - np.arange(89, -1, -1)[None, :]
    live = days >= acc.start[:, None]
    h = np.where(live, _engagement(acc, days), 0.0)

    def mean_last(k: int) -> Arr:
        return h[:, -k:].sum(axis=1) / np.maximum(live[:, -k:].sum(axis=1), 1)

    return pl.DataFrame(
        {
            "acc": acc.num,
            "pattern": acc.pattern,
            "churned": acc.churned,
            "cancel": np.where(acc.churned, acc.cancel, -1).astype(np.int32),
            "e30": np.round(mean_last(30), 6),
            "e90": np.round(mean_last(90), 6),
        }
    ).select(
        account_id=pl.lit("LDG-") + zfill("acc", 6),
        pattern=lookup("pattern", PATTERNS),
        churned="churned",
        cancelled_on=pl.when(pl.col("cancel") >= 0).then(pl.col("cancel").cast(pl.Date)),
        engagement_30d="e30",
        engagement_90d="e90",
    )


# --------------------------------------------------------------------------- shared helpers


def _write_csv(frame: pl.DataFrame, path: pathlib.Path) -> int:
    """Fixed writer settings (header, comma, LF, two decimals) so that equal frames give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path, include_header=True, separator=",", line_terminator="\n", float_precision=2)
    return frame.height
