"""The Ledgerly demo generator: deterministic, exactly the documented layout, messy in the documented
ways only, and behaving like small businesses that leave when they stop invoicing.

One module-scoped run of 300 accounts is shared by the read-only tests; it takes about a second.
Files are read the way a naive loader would (every column as a string) and parsed here, offsets
included, so that the checks do not depend on the platform code being refactored.
"""

import csv
import datetime as dt
import io
import json
import pathlib
import re

import polars as pl
import pytest

from cs_assets.demo import ledgerly
from cs_assets.demo.generator import DemoSummary
from cs_assets.demo.ledgerly import DEMO_AS_OF, generate_ledgerly_data

ACCOUNTS = 300
SEED = 7
DAY0 = DEMO_AS_OF - dt.timedelta(days=364)
END = dt.datetime.combine(DEMO_AS_OF + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

SUBSCRIPTION_COLUMNS = [
    "account_id", "business_name", "country", "plan", "seats", "mrr_usd", "account_manager",
    "signup_date", "renewal_date", "cancelled_on", "updated_at",
]  # fmt: skip
EVENT_COLUMNS = ["event_uuid", "account_id", "actor_id", "event_name", "event_time", "amount_usd", "channel"]
EVENT_NAMES = {
    "login", "invoice_created", "invoice_sent", "payment_received", "expense_logged",
    "report_exported", "bank_feed_synced", "client_added", "user_invited",
}  # fmt: skip
MONEY_EVENTS = {"invoice_created", "invoice_sent", "payment_received", "expense_logged"}
BREADTH_EVENTS = {"bank_feed_synced", "report_exported", "payment_received"}
PLANS = {"solo", "team", "business"}
CHANNELS = {"web", "mobile", "api"}
SEAT_RANGE = {"solo": (1, 2), "team": (3, 10), "business": (10, 60)}
OFFSET_BY_COUNTRY = {  # the account's local style, fixed per country
    "GB": "+00:00", "IE": "Z", "DE": "+01:00", "FR": "+01:00", "NL": "+01:00", "ES": "+01:00",
    "SE": "+01:00", "FI": "+02:00", "US": "-05:00", "JP": "+09:00",
}  # fmt: skip
OFFSET_SUFFIX = r"(Z|[+-]\d\d:\d\d)$"


def _utc(column: str) -> pl.Expr:
    """An ISO-8601 string with a UTC offset ("Z" or "+hh:mm") as a UTC datetime."""
    return (
        pl.col(column)
        .str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC", time_unit="us", strict=True)
    )


def _midnight(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _read_strings(path: pathlib.Path | str) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _all_files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, DemoSummary]:
    root = tmp_path_factory.mktemp("ledgerly")
    return root, generate_ledgerly_data(root / "landing", accounts=ACCOUNTS, seed=SEED)


@pytest.fixture(scope="module")
def raw_accounts(demo) -> pl.DataFrame:
    return _read_strings(demo[0] / "landing" / "subscriptions" / "accounts.csv")


@pytest.fixture(scope="module")
def raw_events(demo) -> pl.DataFrame:
    return _read_strings(demo[0] / "landing" / "events" / "part-00000.csv")


@pytest.fixture(scope="module")
def accounts(raw_accounts: pl.DataFrame) -> pl.DataFrame:
    """One typed row per account (the identical duplicates dropped)."""
    return raw_accounts.unique(maintain_order=True).with_columns(
        pl.col("seats").cast(pl.Int64, strict=True),
        pl.col("mrr_usd").cast(pl.Float64, strict=True),
        pl.col("signup_date", "renewal_date", "cancelled_on").str.to_date("%Y-%m-%d", strict=True),
        updated=_utc("updated_at"),
    )


@pytest.fixture(scope="module")
def events(raw_events: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """Events with stripped ids and exact duplicates dropped, joined to their account's dates."""
    return (
        raw_events.unique(maintain_order=True)
        .with_columns(
            account_id=pl.col("account_id").str.strip_chars(),
            t=_utc("event_time"),
            local_date=pl.col("event_time").str.slice(0, 10).str.to_date("%Y-%m-%d"),
            amount=pl.col("amount_usd").cast(pl.Float64, strict=True),
        )
        .join(
            accounts.select("account_id", "country", "plan", "seats", "signup_date", "cancelled_on"),
            on="account_id",
            how="left",
        )
    )


@pytest.fixture(scope="module")
def truth(demo) -> pl.DataFrame:
    return pl.read_parquet(demo[0] / "demo_truth" / "ledgerly_truth.parquet")


def _rate(events: pl.DataFrame, ends: pl.DataFrame, end_col: str, lo: int, hi: int) -> float:
    """Events per account-day between `lo` and `hi` days before each account's `end_col` (exclusive)."""
    joined = events.join(ends.select("account_id", end_col), on="account_id").with_columns(
        back=(_midnight(end_col) - pl.col("t")).dt.total_seconds() / 86_400
    )
    n = joined.filter((pl.col("back") > lo) & (pl.col("back") <= hi)).height
    return n / ((hi - lo) * ends.height)


# --------------------------------------------------------------------------- determinism and files


def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    root, _ = demo
    again = tmp_path / "again"
    generate_ledgerly_data(again / "landing", accounts=ACCOUNTS, seed=SEED)
    first, second = _all_files(root), _all_files(again)
    assert set(first) == {
        "landing/_demo_manifest.json",
        "landing/subscriptions/accounts.csv",
        "landing/events/part-00000.csv",
        "demo_truth/ledgerly_truth.parquet",
    }
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_different_data(demo, tmp_path):
    root, _ = demo
    other = tmp_path / "other"
    generate_ledgerly_data(other / "landing", accounts=ACCOUNTS, seed=SEED + 1)
    first, second = _all_files(root), _all_files(other)
    assert first.keys() == second.keys()
    differing = {name for name in first if first[name] != second[name]}
    assert differing == set(first)


def test_as_of_moves_the_whole_window(tmp_path):
    as_of = dt.date(2025, 3, 15)
    landing = tmp_path / "landing"
    generate_ledgerly_data(landing, accounts=60, seed=SEED, as_of=as_of)
    times = _read_strings(landing / "events" / "part-00000.csv").select(_utc("event_time")).to_series()
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    assert times.max() < end
    assert times.max() >= end - dt.timedelta(days=3)
    assert times.min() >= end - dt.timedelta(days=365)
    assert json.loads((landing / "_demo_manifest.json").read_text())["as_of"] == "2025-03-15"


def test_chunks_become_part_files_and_a_rerun_removes_stale_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(ledgerly, "CHUNK_ACCOUNTS", 100)
    landing = tmp_path / "landing"
    summary = generate_ledgerly_data(landing, accounts=250, seed=SEED)
    parts = sorted(p.name for p in (landing / "events").iterdir())
    assert parts == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    frames = [_read_strings(landing / "events" / p) for p in parts]
    for i, frame in enumerate(frames):
        ids = frame["account_id"].str.strip_chars().str.slice(4).cast(pl.Int64)
        assert ids.min() > 100 * i and ids.max() <= 100 * (i + 1), "a part holds its own chunk of accounts"
        assert frame.height > frame.unique().height, "every part has a duplicate"
        assert (frame["account_id"] != frame["account_id"].str.strip_chars()).any(), "every part has stray spaces"
    events = pl.concat(frames)
    assert summary.rows["app_events"] == events.height
    distinct = events.unique()
    assert distinct.height == distinct["event_uuid"].n_unique()  # event ids stay unique across parts

    generate_ledgerly_data(landing, accounts=40, seed=SEED)
    assert [p.name for p in (landing / "events").iterdir()] == ["part-00000.csv"]


def test_a_failed_run_leaves_no_manifest(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    generate_ledgerly_data(landing, accounts=20, seed=SEED)
    assert (landing / "_demo_manifest.json").is_file()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ledgerly, "_event_chunk", broken)
    with pytest.raises(RuntimeError):
        generate_ledgerly_data(landing, accounts=20, seed=SEED)
    assert not (landing / "_demo_manifest.json").exists()


def test_rejects_an_empty_run(tmp_path):
    with pytest.raises(ValueError):
        generate_ledgerly_data(tmp_path / "landing", accounts=0)


def test_exact_columns_in_order_with_lf_line_ends(demo):
    landing = demo[0] / "landing"
    accounts_bytes = (landing / "subscriptions" / "accounts.csv").read_bytes()
    events_bytes = (landing / "events" / "part-00000.csv").read_bytes()
    for data, columns in ((accounts_bytes, SUBSCRIPTION_COLUMNS), (events_bytes, EVENT_COLUMNS)):
        assert b"\r" not in data
        assert data.endswith(b"\n")
        assert data.split(b"\n", 1)[0].decode() == ",".join(columns)
        # every record parses to exactly the header's width (quoting of names with commas works)
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert {len(r) for r in rows} == {len(columns)}
    assert "received_at" not in events_bytes.split(b"\n", 1)[0].decode()


# --------------------------------------------------------------------------- values


def test_required_values_are_never_empty(raw_accounts, raw_events):
    for frame, required in (
        (raw_accounts, ["account_id", "plan", "seats", "signup_date", "renewal_date", "updated_at"]),
        (raw_events, ["account_id", "event_uuid", "event_name", "event_time"]),
    ):
        for column in required:
            assert frame[column].null_count() == 0, column
            assert (frame[column].str.strip_chars() != "").all(), column


def test_vocabularies_and_formats(accounts, raw_events, events):
    assert set(accounts["plan"]) == PLANS
    assert set(accounts["country"]) <= set(OFFSET_BY_COUNTRY)
    assert len(set(accounts["country"])) >= 6
    assert set(raw_events["event_name"]) == EVENT_NAMES
    assert set(raw_events["channel"]) == CHANNELS
    assert accounts["account_id"].str.contains(r"^LDG-\d{6}$").all()
    assert raw_events["event_uuid"].str.contains(r"^E-\d{8}$").all()
    assert raw_events["event_time"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + OFFSET_SUFFIX).all()
    assert accounts["updated_at"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + OFFSET_SUFFIX).all()
    # an actor is a user of the event's own account, numbered within its seats
    actor = events.select(
        own=pl.col("actor_id").str.slice(2, 6) == pl.col("account_id").str.slice(4),
        user=pl.col("actor_id").str.extract(r"^U-\d{6}-(\d{2})$").cast(pl.Int64),
        seats="seats",
    )
    assert actor["own"].all()
    assert ((actor["user"] >= 1) & (actor["user"] <= actor["seats"])).all()


def test_money_only_on_money_events(events):
    money = events.filter(pl.col("event_name").is_in(MONEY_EVENTS))
    other = events.filter(~pl.col("event_name").is_in(MONEY_EVENTS))
    assert money["amount"].null_count() == 0
    assert (money["amount"] > 0).all()
    assert other["amount"].null_count() == other.height
    assert events["amount_usd"].drop_nulls().str.contains(r"^\d+\.\d{2}$").all()


def test_plans_seats_mrr_and_account_managers(accounts):
    for plan, (lo, hi) in SEAT_RANGE.items():
        seats = accounts.filter(pl.col("plan") == plan)["seats"]
        assert seats.min() >= lo and seats.max() <= hi, plan
    assert accounts["plan"].value_counts().sort("count")["plan"][-1] == "solo"  # mostly small self-serve
    mean_mrr = accounts.group_by("plan").agg(pl.col("mrr_usd").mean()).sort("mrr_usd")["plan"].to_list()
    assert mean_mrr == ["solo", "team", "business"]
    assert (accounts["mrr_usd"] > 0).all()
    managed = accounts.filter(pl.col("account_manager").is_not_null())
    assert len(managed) > 0
    assert (managed["plan"] == "business").all()
    assert managed["account_manager"].str.contains(r"^[a-z]+\.[a-z]+@ledgerly\.example$").all()
    business = accounts.filter(pl.col("plan") == "business")
    assert 0 < managed.height < business.height


def test_business_names_exercise_csv_quoting(accounts):
    names = accounts["business_name"]
    assert names.str.contains(",").any()
    assert names.str.contains('"').any()
    assert names.str.contains(r"[^\x00-\x7F]").any()
    assert names.null_count() == 0


def test_signups_mostly_before_the_window(accounts):
    signup = accounts["signup_date"]
    inside = (signup >= DAY0).mean()
    assert 0.08 <= inside <= 0.25
    assert signup.max() <= DEMO_AS_OF
    assert signup.min() >= DAY0 - dt.timedelta(days=3 * 365)


def test_renewal_is_the_first_anniversary_after_as_of_or_cancellation(accounts):
    checked = accounts.with_columns(
        ref=pl.coalesce("cancelled_on", pl.lit(DEMO_AS_OF)),
        years=pl.col("renewal_date").dt.year() - pl.col("signup_date").dt.year(),
    ).with_columns(
        anniversary=pl.col("signup_date").dt.offset_by(pl.format("{}y", "years")),
        previous=pl.col("signup_date").dt.offset_by(pl.format("{}y", pl.col("years") - 1)),
    )
    assert (checked["renewal_date"] == checked["anniversary"]).all()
    assert (checked["years"] >= 1).all()
    assert (checked["renewal_date"] > checked["ref"]).all()
    later = checked.filter(pl.col("years") > 1)
    assert (later["previous"] <= later["ref"]).all()


def test_updated_at_is_after_signup_and_not_in_the_future(accounts):
    assert (accounts["updated"] < END).all()
    signup = accounts.select(_midnight("signup_date")).to_series()
    assert (accounts["updated"] >= signup).all()


# --------------------------------------------------------------------------- integrity


def test_every_event_account_is_a_known_account_after_stripping(events, accounts):
    assert events["signup_date"].null_count() == 0
    assert set(events["account_id"]) <= set(accounts["account_id"])


def test_events_only_while_subscribed_and_inside_the_window(events):
    bounds = events.with_columns(
        start=_midnight("signup_date"),
        stop=_midnight("cancelled_on").fill_null(END),
    )
    assert (bounds["t"] < END).all()
    assert (bounds["t"] >= bounds["start"]).all()
    assert (bounds["t"] < bounds["stop"]).all()
    assert bounds["t"].min() >= END - dt.timedelta(days=365)
    # by the local calendar too: the date written in the string
    assert (bounds["local_date"] >= bounds["signup_date"]).all()
    assert (bounds["local_date"] < bounds["cancelled_on"].fill_null(DEMO_AS_OF + dt.timedelta(days=1))).all()
    assert (bounds["local_date"] >= DAY0).all()
    assert bounds["t"].max() >= END - dt.timedelta(days=1)  # the window ends with as_of


def test_event_offsets_follow_the_account_country(events):
    styles = events.select("account_id", "country", suffix=pl.col("event_time").str.extract(OFFSET_SUFFIX)).unique()
    assert styles["account_id"].n_unique() == styles.height  # one style per account
    expected = styles["country"].replace_strict(OFFSET_BY_COUNTRY)
    assert (styles["suffix"] == expected).all()
    assert styles["suffix"].n_unique() >= 5


def test_the_documented_mess_is_there(raw_accounts, raw_events, demo):
    landing = demo[0] / "landing"
    lines = (landing / "subscriptions" / "accounts.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert 2 <= len(lines) - len(set(lines)) <= 5
    assert raw_accounts.height - raw_accounts.unique().height == len(lines) - len(set(lines))
    assert raw_accounts["account_id"].n_unique() == ACCOUNTS
    assert (raw_accounts["account_id"] == raw_accounts["account_id"].str.strip_chars()).all()

    duplicates = raw_events.height - raw_events.unique().height
    assert duplicates >= 1
    assert duplicates / raw_events.height < 0.005
    # duplicates are exact: one row per event id once identical rows are dropped
    assert raw_events.unique().height == raw_events["event_uuid"].n_unique()
    padded = raw_events["account_id"] != raw_events["account_id"].str.strip_chars()
    assert padded.any()
    assert 0.003 <= padded.mean() <= 0.03
    assert raw_events["account_id"].str.strip_chars().str.contains(r"^LDG-\d{6}$").all()


# --------------------------------------------------------------------------- behaviour


def test_event_volume_is_in_the_intended_range(events, accounts):
    life_start = accounts.select(pl.max_horizontal("signup_date", pl.lit(DAY0))).to_series()
    life_end = accounts.select(pl.coalesce("cancelled_on", pl.lit(DEMO_AS_OF + dt.timedelta(days=1)))).to_series()
    live_years = (life_end - life_start).dt.total_days().clip(0).sum() / 365
    per_year = events.height / live_years
    assert 100 <= per_year <= 400
    by_plan = events.group_by("plan").len().join(accounts.group_by("plan").len("accounts"), on="plan")
    per_account = dict(zip(by_plan["plan"], by_plan["len"] / by_plan["accounts"], strict=True))
    assert per_account["solo"] < per_account["team"] < per_account["business"]
    weekday = events.select(pl.col("local_date").dt.weekday()).to_series()
    assert (weekday >= 6).mean() < 0.08  # weekends are quiet


def test_churn_share_and_cancellations_across_the_year(accounts):
    cancelled = accounts.filter(pl.col("cancelled_on").is_not_null())
    assert 0.15 <= cancelled.height / accounts.height <= 0.30
    assert (cancelled["cancelled_on"] >= DAY0).all() and (cancelled["cancelled_on"] <= DEMO_AS_OF).all()
    quarter = ((cancelled["cancelled_on"] - DAY0).dt.total_days() // 92).clip(0, 3)
    counts = quarter.value_counts().sort(quarter.name)["count"]
    assert len(counts) == 4
    assert counts.min() >= 0.1 * cancelled.height  # spread over the year, not bunched at the end
    # live accounts whose signup anniversary passed inside the window renewed
    renewed = accounts.filter(
        pl.col("cancelled_on").is_null()
        & (pl.col("renewal_date").dt.offset_by("-1y") >= DAY0)
        & (pl.col("renewal_date").dt.offset_by("-1y") > pl.col("signup_date"))
    )
    assert renewed.height >= 0.3 * accounts.height


def test_churned_accounts_go_quiet_before_cancelling(events, accounts):
    """Each churner's event rate in its last 30 days is well below its own rate 90-180 days before.

    Compared account by account: pooled over accounts, one busy business that cancels abruptly
    (about 15% of churners do) can outweigh dozens of fading solo accounts in a run this small.
    """
    churned = accounts.filter(
        pl.col("cancelled_on").is_not_null()
        & (pl.col("cancelled_on") >= DAY0 + dt.timedelta(days=180))
        & (pl.col("signup_date") <= pl.col("cancelled_on") - dt.timedelta(days=180))
    )
    assert churned.height >= 15
    own = events.join(churned.select("account_id", cancel="cancelled_on"), on="account_id").with_columns(
        back=(_midnight("cancel") - pl.col("t")).dt.total_seconds() / 86_400
    )
    per_account = (
        own.group_by("account_id")
        .agg(
            last_30=(pl.col("back") <= 30).sum() / 30,
            before=((pl.col("back") > 90) & (pl.col("back") <= 180)).sum() / 90,
        )
        .filter(pl.col("before") > 0)
        .select(ratio=pl.col("last_30") / pl.col("before"))["ratio"]
    )
    assert per_account.len() >= 0.8 * churned.height
    assert per_account.median() < 0.4
    assert (per_account < 0.5).mean() >= 0.6
    # the volume fades too, even with the abrupt ones in
    assert _rate(events, churned, "cancelled_on", 0, 30) < 0.75 * _rate(events, churned, "cancelled_on", 90, 180)
    # the control: accounts that stay do not fade over the same stretch before as_of
    stay = accounts.filter(
        pl.col("cancelled_on").is_null() & (pl.col("signup_date") <= DEMO_AS_OF - dt.timedelta(days=180))
    ).with_columns(end=pl.lit(DEMO_AS_OF + dt.timedelta(days=1)))
    assert _rate(events, stay, "end", 0, 30) > 0.75 * _rate(events, stay, "end", 90, 180)


def test_fading_accounts_narrow_to_logins_and_invoices(events, truth):
    """Healthy accounts sync bank feeds, record payments and export reports; fading ones mostly log in
    and draft invoices."""
    gradual = truth.filter(pl.col("pattern") == "churn_gradual").select("account_id", cancel="cancelled_on")
    own = events.join(gradual, on="account_id").with_columns(
        back=(_midnight("cancel") - pl.col("t")).dt.total_seconds() / 86_400
    )
    last_30 = own.filter(pl.col("back") <= 30)["event_name"]
    before = own.filter((pl.col("back") > 90) & (pl.col("back") <= 180))["event_name"]
    assert last_30.len() >= 50
    assert last_30.is_in(BREADTH_EVENTS).mean() < 0.85 * before.is_in(BREADTH_EVENTS).mean()
    assert last_30.is_in(["login", "invoice_created"]).mean() > 0.6
    # across accounts that stay: more engaged ones use more of the product
    recent = events.filter(pl.col("t") >= END - dt.timedelta(days=90)).join(
        truth.filter(~pl.col("churned")), on="account_id"
    )
    per_account = recent.group_by("account_id").agg(
        breadth=pl.col("event_name").is_in(BREADTH_EVENTS).mean(), engagement=pl.col("engagement_90d").first()
    )
    engaged = per_account["engagement"] > per_account["engagement"].median()
    assert per_account.filter(engaged)["breadth"].mean() > 1.1 * per_account.filter(~engaged)["breadth"].mean()


def test_recency_and_frequency_alone_are_not_perfect(events, accounts, truth):
    """Accounts that stay include some that went quiet for weeks and some that are never busy."""
    # a holiday: two weeks at a fifth of the account's usual pace or less, from accounts that stay
    window = pl.DataFrame({"local_date": pl.date_range(DAY0, DEMO_AS_OF, eager=True)})
    candidates = truth.filter(pl.col("pattern").is_in(["lull", "stable"])).join(
        accounts.select("account_id", "signup_date"), on="account_id"
    )
    grid = candidates.join(window, how="cross").filter(
        pl.col("local_date") >= pl.col("signup_date") + dt.timedelta(days=30)  # past onboarding
    )
    daily = events.group_by("account_id", "local_date").len("n")
    fortnights = (
        grid.join(daily, on=["account_id", "local_date"], how="left")
        .with_columns(pl.col("n").fill_null(0))
        .sort("account_id", "local_date")
        .with_columns(fortnight=pl.col("n").rolling_sum(14).over("account_id"))
        .group_by("account_id", "pattern", "churned")
        .agg(usual=pl.col("n").mean() * 14, quietest=pl.col("fortnight").min())
        .filter(pl.col("usual") >= 10)  # busy enough for a quiet fortnight to mean something
        .with_columns(dipped=pl.col("quietest") <= 0.2 * pl.col("usual"))
    )
    lull = fortnights.filter(pl.col("pattern") == "lull")
    stable = fortnights.filter(pl.col("pattern") == "stable")
    assert lull.height >= 3 and not lull["churned"].any()
    assert lull["dipped"].mean() >= 0.5
    assert lull["dipped"].mean() > 2.5 * stable["dipped"].mean()

    # a few invoices a month, for years: customers for over two years who never cancelled
    loyal = accounts.filter(pl.col("cancelled_on").is_null() & (pl.col("signup_date") < DAY0 - dt.timedelta(days=365)))
    per_month = events.join(loyal.select("account_id"), on="account_id").group_by("account_id").len()
    quiet = per_month.filter(pl.col("len") <= 6 * 12)
    assert quiet.height >= 5
    assert "steady_low" in set(truth.join(quiet, on="account_id")["pattern"])


def test_truth_describes_every_account_and_agrees_with_the_export(truth, accounts):
    assert truth.columns == [
        "account_id", "pattern", "churned", "cancelled_on", "engagement_30d", "engagement_90d",
    ]  # fmt: skip
    assert truth.height == ACCOUNTS
    assert set(truth["account_id"]) == set(accounts["account_id"])
    assert set(truth["pattern"]) <= set(ledgerly.PATTERNS)
    assert {"stable", "lull", "churn_gradual"} <= set(truth["pattern"])
    both = truth.join(accounts.select("account_id", exported="cancelled_on"), on="account_id")
    assert (both["churned"] == both["exported"].is_not_null()).all()
    assert both.filter(pl.col("churned")).select((pl.col("cancelled_on") == pl.col("exported")).all()).item()
    assert (both["churned"] == both["pattern"].str.starts_with("churn_")).all()
    for column in ("engagement_30d", "engagement_90d"):
        assert both[column].is_between(0.0, 1.0).all()
    means = both.group_by("churned").agg(pl.col("engagement_30d").mean()).sort("churned")["engagement_30d"]
    assert means[1] < 0.5 * means[0]  # churners had faded by the end


def test_manifest_and_summary(demo, raw_accounts, raw_events):
    root, summary = demo
    landing = root / "landing"
    manifest_path = landing / "_demo_manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rows = {"subscriptions": raw_accounts.height, "app_events": raw_events.height}
    assert manifest == {
        "generator": "cs-health-demo-ledgerly",
        "product": "ledgerly",
        "version": 1,
        "seed": SEED,
        "accounts": ACCOUNTS,
        "as_of": DEMO_AS_OF.isoformat(),
        "rows": rows,
    }
    assert summary.rows == rows
    assert summary.accounts == ACCOUNTS and summary.seed == SEED and summary.as_of == DEMO_AS_OF
    assert summary.landing_dir == landing
    assert (
        summary.churned_accounts == raw_accounts.filter(pl.col("cancelled_on").is_not_null())["account_id"].n_unique()
    )
    newest = max(p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file())
    assert manifest_path.stat().st_mtime_ns == newest  # written last
    assert not list(landing.glob("*.tmp"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", manifest["as_of"])
