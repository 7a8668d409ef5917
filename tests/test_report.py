"""The health report: its summaries on small frames, and the page `cs-health report` writes for a
published, validated history, opened in headless Chromium, its numbers read back and compared
with the warehouse."""

import datetime as dt

import duckdb
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.cli import main
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.report.data import ReportData, actions_by_owner, band_movements, band_summary, read_report_data
from cs_assets.report.html import render_report
from cs_assets.validation.config import DEFAULT_VALIDATION_PATH
from tests.browser_harness import artifact, browser_page
from tests.harness import copy_home, run_validation

BANDS = [("red", 0.0), ("yellow", 40.0), ("green", 70.0)]
D = dt.date(2026, 10, 31)


def _data(**changes) -> ReportData:
    accounts = pl.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "health_score": [20.0, 55.0, 80.0, 90.0],
            "band": ["red", "yellow", "green", "green"],
            "csm_owner": ["ann", "bob", None, "ann"],
            "arr_usd": [1000.0, 2000.0, 3000.0, 4000.0],
            "drag_1_indicator": ["usage", "usage", "nps", None],
        }
    )
    values = dict(
        snapshot=D,
        previous=D - dt.timedelta(days=7),
        bands=BANDS,
        accounts=accounts,
        previous_bands=pl.DataFrame({"account_id": ["A", "B", "C"], "band": ["yellow", "yellow", "red"]}),
        drags=pl.DataFrame({"indicator": ["usage", "nps"], "points_lost": [30.5, 12.25], "accounts_top_drag": [2, 1]}),
        actions=pl.DataFrame(
            {
                "priority": ["P2", "P1", "P3"],
                "account_id": ["C", "A", "B"],
                "owner": ["unassigned", "ann", "bob"],
                "rule": ["r2", "r1", "r3"],
                "action": ["call", "rescue <now>", "check"],
                "reason": ["x", "band = red", "y"],
                "first_snapshot": [D, D, D],
                "health_score": [80.0, 20.0, 55.0],
                "band": ["green", "red", "yellow"],
            }
        ),
        validation=None,
        validation_horizon=None,
    )
    values.update(changes)
    return ReportData(**values)


def test_band_movements_count_accounts_from_their_band_a_week_before_and_new_ones_apart():
    moves = band_movements(_data())
    assert moves.rows() == [("(new)", "green", 1), ("red", "green", 1), ("yellow", "red", 1), ("yellow", "yellow", 1)]


def test_every_band_is_summarised_riskiest_first_even_an_empty_one():
    data = _data(accounts=_data().accounts.filter(pl.col("band") != "yellow"))
    summary = band_summary(data)
    assert summary["band"].to_list() == ["red", "yellow", "green"]
    assert summary["accounts"].to_list() == [1, 0, 2] and summary["arr_usd"].to_list() == [1000.0, 0.0, 7000.0]
    assert summary["share"].to_list() == pytest.approx([1 / 3, 0, 2 / 3])


def test_a_band_the_model_no_longer_has_is_still_counted_after_its_own():
    # the snapshot a week before was scored by a model whose riskiest band was "critical"
    data = _data(previous_bands=pl.DataFrame({"account_id": ["A", "B"], "band": ["critical", "yellow"]}))
    text = render_report(data, "config")
    assert 'data-metric="moved:critical-&gt;red">1<' in text and 'data-metric="moved_from:(new)">2<' in text
    # its order among the bands is unknown: neither riskier nor healthier
    assert 'data-metric="moved_down">0<' in text and 'data-metric="moved_up">0<' in text
    renamed = _data(accounts=_data().accounts.with_columns(pl.col("band").replace({"red": "critical"})))
    assert band_summary(renamed)["band"].to_list() == ["red", "yellow", "green", "critical"]
    assert render_report(renamed, "config").count('data-metric="band_accounts:critical">1<') == 1


def test_actions_are_grouped_by_owner_the_owner_of_the_most_urgent_first():
    groups = actions_by_owner(_data())
    assert [owner for owner, _ in groups] == ["ann", "unassigned", "bob"]
    assert groups[0][1]["account_id"].to_list() == ["A"]


def test_an_owners_list_shows_the_most_urgent_and_says_how_to_see_the_rest(monkeypatch):
    import cs_assets.report.html as page

    monkeypatch.setattr(page, "ACTIONS_PER_OWNER", 1)
    many = _data().actions.with_columns(owner=pl.lit("ann"))
    text = render_report(_data(actions=many), "config")
    assert "... and 2 more: <code>cs-health actions --owner ann --limit 3</code>" in text
    # the P1 first: the P2 and P3 wait behind the command
    assert text.count("<td>P1</td>") == 1 and "<td>P2</td>" not in text and "<td>P3</td>" not in text


def test_the_page_is_the_same_bytes_for_the_same_data_and_escapes_what_it_shows():
    first, second = render_report(_data(), "config"), render_report(_data(), "config")
    assert first == second
    assert "rescue &lt;now&gt;" in first and "rescue <now>" not in first
    assert "No validation yet" in first
    # no snapshot a week before: the movements section says so instead of a table of nothing
    alone = render_report(_data(previous=None, previous_bands=_data().previous_bands.clear()), "config")
    assert "No snapshot was published on or before 2026-10-24" in alone and "moved:" not in alone


def test_a_snapshot_that_was_not_published_is_refused_naming_what_was(published_demo_home):
    con = duckdb.connect(str(settings.warehouse_path(published_demo_home)), read_only=True)
    try:
        with pytest.raises(
            LookupError, match=r"no published snapshot 2026-10-01: published are 2026-10-31\.\.2026-10-31"
        ):
            read_report_data(con, BANDS, dt.date(2026, 10, 1))
    finally:
        con.close()


# --------------------------------------------------------------------------- in a browser


def _sql(home, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_the_report_in_a_browser_shows_the_warehouse_numbers(long_history_home, tmp_path, capsys):
    home = copy_home(long_history_home, tmp_path / "home")
    config = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    # 120 accounts: few churns, so a short horizon (as the validation tests)
    config["calibration"].update(horizon_days=30, min_outcomes_per_class=3, min_accounts_per_bin=5, max_bins=4)
    (tmp_path / "validation.yaml").write_text(yaml.safe_dump(config))
    assert run_validation(home, validation_path=tmp_path / "validation.yaml").success

    capsys.readouterr()
    assert main(["--home", str(home), "report", "--out", str(tmp_path / "reports")]) == 0
    path = tmp_path / "reports" / f"health_report_{DEMO_AS_OF}.html"
    assert capsys.readouterr().out.strip() == str(path)

    requested = []
    with browser_page(1280, 900) as page:
        page.on("request", lambda r: requested.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(artifact("health_report.png")), full_page=True)
        shown = page.eval_on_selector_all(
            "[data-metric]", "els => els.map(e => [e.dataset.metric, e.textContent.trim()])"
        )
        images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
    metrics = dict(shown)
    assert len(metrics) == len(shown)  # every metric once
    # static and offline: the page itself, its images inline
    assert all(u == path.as_uri() or u.startswith("data:") for u in requested)
    assert len(images) == 3 and all(w > 0 for w in images)  # distribution, churn per band, by tenure

    day = DEMO_AS_OF
    week = _sql(
        home,
        "SELECT max(snapshot_date) FROM published.account_health WHERE snapshot_date <= ?",
        [day - dt.timedelta(days=7)],
    )[0][0]
    assert metrics["snapshot"] == day.isoformat()
    ((count, mean, median),) = _sql(
        home,
        "SELECT count(*), avg(CAST(health_score AS DOUBLE)), median(CAST(health_score AS DOUBLE)) "
        "FROM published.account_health WHERE snapshot_date = ?",
        [day],
    )
    assert metrics["accounts"] == f"{count:,}"
    assert metrics["mean_score"] == f"{mean:,.1f}" and metrics["median_score"] == f"{median:,.1f}"
    for band, n in _sql(
        home, "SELECT band, count(*) FROM published.account_health WHERE snapshot_date = ? GROUP BY 1", [day]
    ):
        assert metrics[f"band_accounts:{band}"] == f"{n:,}"

    moves = _sql(
        home,
        "SELECT coalesce(p.band, '(new)'), c.band, count(*) FROM published.account_health c "
        "LEFT JOIN published.account_health p ON p.account_id = c.account_id AND p.snapshot_date = ? "
        "WHERE c.snapshot_date = ? GROUP BY ALL",
        [week, day],
    )
    assert moves and all(metrics[f"moved:{f}->{t}"] == f"{n:,}" for f, t, n in moves)
    assert sum(int(v) for k, v in metrics.items() if k.startswith("moved:")) == count

    owners = _sql(
        home,
        "SELECT coalesce(owner, 'unassigned'), count(*) FROM published.account_actions "
        "WHERE first_snapshot <= ? AND last_snapshot >= ? GROUP BY 1",
        [day, day],
    )
    assert owners and all(metrics[f"owner_actions:{o}"] == f"{n:,}" for o, n in owners)
    assert metrics["actions"] == f"{sum(n for _, n in owners):,}"

    drags = _sql(
        home,
        "SELECT indicator, sum(max_points - points) FROM published.account_health_contributions "
        "WHERE snapshot_date = ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
        [day],
    )
    assert all(metrics[f"drag_points:{i}"] == f"{float(p):,.1f}" for i, p in drags)

    # the validation section: the groups the validation run itself wrote, for its main horizon
    groups = _sql(
        home,
        "SELECT segment, accounts, churned FROM published.score_validation_groups WHERE kind = 'band' AND horizon_days = 30",
    )
    assert groups and all(
        metrics[f"validation_outcomes:{b}"] == f"{a:,}" and metrics[f"validation_churned:{b}"] == f"{c:,}"
        for b, a, c in groups
    )


def test_the_asset_wrote_the_newest_snapshots_page_and_the_command_writes_the_same_bytes(
    published_demo_home, tmp_path, capsys
):
    written = settings.reports_dir(published_demo_home) / f"health_report_{DEMO_AS_OF}.html"
    assert written.is_file()  # by the health_report asset of the home's run
    assert main(["--home", str(published_demo_home), "report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / written.name).read_bytes() == written.read_bytes()
    assert main(["--home", str(published_demo_home), "report", "--snapshot", "2026-10-01"]) == 1
    assert "no published snapshot 2026-10-01" in capsys.readouterr().err
