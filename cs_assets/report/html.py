"""The health report as one static HTML page: inline CSS, plots as PNG data: URIs (drawn by the
same matplotlib code as the asset metadata), no script, no server, readable offline.

Every number a reader (or a test) may check carries a `data-metric` attribute naming what it is;
the page has no timestamp of its own, so the same warehouse gives the same bytes.
"""

import datetime as dt
from html import escape

import polars as pl

from cs_assets.report.data import NEW, ReportData, actions_by_owner, band_movements, band_summary, churn_per_band
from cs_assets.scoring.charts import figure_data_uri, score_histogram
from cs_assets.validation.charts import churn_per_band_chart, score_by_tenure_boxplot

BAND_COLOURS = {"red": "#c44e52", "yellow": "#dd8452", "green": "#55a868"}
TOP_DRAGS = 10
# a manager reads the most urgent of an owner's list; the rest is one command away (the page of a
# 100,000-account base would otherwise weigh tens of megabytes)
ACTIONS_PER_OWNER = 100

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2933; background: #f5f7fa; }
header { background: #1f2933; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #cbd2d9; font-size: 13px; }
main { padding: 16px 32px 40px; max-width: 1200px; }
section { background: white; border-radius: 6px; padding: 16px 20px; margin: 16px 0; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #e4e7eb; border-radius: 6px; padding: 10px 14px; min-width: 120px; }
.card .value { font-size: 24px; font-weight: 600; }
.card .label { font-size: 12px; color: #616e7c; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.band { display: inline-block; padding: 0 6px; border-radius: 3px; color: white; font-size: 12px; }
.note { color: #616e7c; font-size: 13px; }
.plots { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; }
.nowrap { white-space: nowrap; }
details { margin: 6px 0; } summary { cursor: pointer; font-size: 14px; padding: 3px 0; }
"""


def _num(value: float | int | None, metric: str, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return f'<span data-metric="{escape(metric)}">n/a</span>'
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"
    return f'<span data-metric="{escape(metric)}">{text}{suffix}</span>'


def _band(name: str | None) -> str:
    if name is None:
        return ""
    colour = BAND_COLOURS.get(name, "#4c72b0")
    return f'<span class="band" style="background:{colour}">{escape(name)}</span>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _overview(data: ReportData) -> str:
    scores = data.accounts["health_score"]
    summary = band_summary(data)
    cards = [
        ("accounts", _num(data.accounts.height, "accounts")),
        ("mean score", _num(scores.mean() if scores.len() else None, "mean_score")),  # type: ignore[arg-type]
        ("median score", _num(scores.median() if scores.len() else None, "median_score")),  # type: ignore[arg-type]
    ]
    for row in summary.iter_rows(named=True):
        cards.append((f"{row['band']} ({row['share']:.0%})", _num(row["accounts"], f"band_accounts:{row['band']}")))
    card_html = "".join(
        f'<div class="card"><div class="value">{value}</div><div class="label">{escape(label)}</div></div>'
        for label, value in cards
    )
    arr = _table(
        ["band", "accounts", "share", "ARR (USD)"],
        [
            [
                _band(r["band"]),
                _num(r["accounts"], f"band_accounts_table:{r['band']}"),
                f"{r['share']:.1%}",
                _num(r["arr_usd"], f"band_arr:{r['band']}", 0),
            ]
            for r in summary.iter_rows(named=True)
        ],
        {1, 2, 3},
    )
    histogram = figure_data_uri(score_histogram(scores, data.bands, f"Health scores on {data.snapshot}"))
    return (
        f"<section><h2>Score distribution</h2><div class=cards>{card_html}</div>"
        f'<div class=plots><img alt="score distribution" src="{histogram}">{arr}</div></section>'
    )


def _movements(data: ReportData) -> str:
    if data.previous is None:
        return (
            "<section><h2>Band movements since last week</h2>"
            f"<p class=note>No snapshot was published on or before {data.snapshot - dt.timedelta(days=7)}: "
            "nothing to compare with yet (backfill history: cs-health backfill --days 8).</p></section>"
        )
    moves = band_movements(data)
    # the model's bands, riskiest first; a band of an older model (a snapshot scored before the
    # bands were renamed) follows them, so no account drops out of the table
    seen = set(moves["from_band"].to_list()) | set(moves["to_band"].to_list())
    names = [*data.band_names, *sorted(seen - {*data.band_names, NEW})]
    from_bands = [b for b in [*names, NEW] if b in set(moves["from_band"].to_list())]
    counts = {(r["from_band"], r["to_band"]): r["accounts"] for r in moves.iter_rows(named=True)}
    rows = [
        [_band(f) if f in names else escape(f)]
        + [_num(counts.get((f, t), 0), f"moved:{f}->{t}", 0) for t in names]
        + [_num(sum(counts.get((f, t), 0) for t in names), f"moved_from:{f}", 0)]
        for f in from_bands
    ]
    # riskier or healthier only between the model's own bands, whose order is known
    rank = {name: i for i, name in enumerate(data.band_names)}
    known = [(rank[f], rank[t], n) for (f, t), n in counts.items() if f in rank and t in rank]
    worse = sum(n for f, t, n in known if t < f)
    better = sum(n for f, t, n in known if t > f)
    return (
        "<section><h2>Band movements since last week</h2>"
        f"<p>From {data.previous} to {data.snapshot}: {_num(worse, 'moved_down', 0)} account(s) moved to a riskier "
        f"band, {_num(better, 'moved_up', 0)} to a healthier one. Rows: band then; columns: band now.</p>"
        + _table(["then \\ now", *names, "total"], rows, set(range(1, len(names) + 2)))
        + "</section>"
    )


def _actions(data: ReportData) -> str:
    groups = actions_by_owner(data)
    if not groups:
        return (
            "<section><h2>Accounts that need action</h2><p class=note>No action holds on this snapshot.</p></section>"
        )
    priorities = sorted(data.actions["priority"].unique().to_list())
    overview = _table(
        ["owner", *priorities, "total"],
        [
            [escape(owner)]
            + [str(frame.filter(pl.col("priority") == p).height or "") for p in priorities]
            + [_num(frame.height, f"owner_actions:{owner}", 0)]
            for owner, frame in groups
        ],
        set(range(1, len(priorities) + 2)),
    )
    parts = [
        f"<section><h2>Accounts that need action, by owner</h2>"
        f"<p>{_num(data.actions.height, 'actions', 0)} action(s) hold on {data.snapshot}, "
        f"for {_num(data.actions['account_id'].n_unique(), 'action_accounts', 0)} account(s).</p>{overview}"
    ]
    for owner, frame in groups:
        urgent = frame.filter(pl.col("priority") == priorities[0]).height
        # one native <details> per owner: the page stays short, and needs no script to open
        parts.append(
            f"<details><summary><b>{escape(owner)}</b>: {frame.height} action(s), "
            f"{urgent} {escape(priorities[0])}</summary>"
        )
        rows = [
            [
                escape(r["priority"]),
                f"<span class=nowrap>{escape(r['account_id'])}</span>",
                escape(r["reason"]),
                f"<span class=note>{escape(r['action'])}</span>",
                "<span class=nowrap>"
                + (f"{r['health_score']:.1f} " if r["health_score"] is not None else "")
                + _band(r["band"])
                + "</span>",
                f"<span class=nowrap>{r['first_snapshot'].isoformat()}</span>",
            ]
            for r in frame.head(ACTIONS_PER_OWNER).iter_rows(named=True)
        ]
        more = (
            f"<p class=note>... and {frame.height - ACTIONS_PER_OWNER} more: "
            f"<code>cs-health actions --owner {escape(owner)} --limit {frame.height}</code></p>"
            if frame.height > ACTIONS_PER_OWNER
            else ""
        )
        table = _table(["priority", "account", "why", "what to do", "score", "since"], rows, {4})
        parts.append(f"{table}{more}</details>")
    parts.append("</section>")
    return "".join(parts)


def _drags(data: ReportData) -> str:
    top = data.drags.head(TOP_DRAGS)
    rows = [
        [
            escape(r["indicator"]),
            _num(r["points_lost"], f"drag_points:{r['indicator']}"),
            _num(r["points_lost"] / max(data.accounts.height, 1), f"drag_points_per_account:{r['indicator']}", 2),
            _num(r["accounts_top_drag"], f"drag_accounts:{r['indicator']}", 0),
        ]
        for r in top.iter_rows(named=True)
    ]
    return (
        "<section><h2>Top drags across the base</h2>"
        "<p class=note>Points each indicator costs all accounts together (its maximum points minus its points), "
        "and how many accounts it costs the most.</p>"
        + _table(["indicator", "points lost", "per account", "accounts where it is the top drag"], rows, {1, 2, 3})
        + "</section>"
    )


def _validation(data: ReportData) -> str:
    per_band = churn_per_band(data)
    if data.validation is None or per_band is None:
        return (
            "<section><h2>Does the score predict churn?</h2><p class=note>No validation yet: run "
            "<code>cs-health validate</code> (the validation job) on a published history.</p></section>"
        )
    days = data.validation_horizon
    rows = data.validation
    churn = figure_data_uri(churn_per_band_chart(per_band, f"churn per band, score {days} days before"))
    tenure = figure_data_uri(score_by_tenure_boxplot(rows, f"score {days} days before the outcome, by tenure"))
    table = _table(
        ["band", "outcomes", "churned", "churn rate"],
        [
            [
                _band(r["band"]),
                _num(r["accounts"], f"validation_outcomes:{r['band']}", 0),
                _num(r["churned"], f"validation_churned:{r['band']}", 0),
                _num(r["churn_rate"] * 100, f"validation_churn_rate:{r['band']}", 1, "%"),
            ]
            for r in per_band.iter_rows(named=True)
        ],
        {1, 2, 3},
    )
    return (
        "<section><h2>Does the score predict churn?</h2>"
        f"<p>{_num(rows.height, 'validation_outcomes', 0)} renewals and churns, each with the score the account had "
        f"{days} days before (the last validation run).</p>"
        f'<div class=plots><img alt="churn per band" src="{churn}"><img alt="score by tenure" src="{tenure}">'
        f"{table}</div></section>"
    )


def render_report(data: ReportData, deployment: str) -> str:
    """The whole page for one snapshot of the deployment (its config directory)."""
    previous = f", compared with {data.previous}" if data.previous else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>Customer health, {data.snapshot}</title><style>{STYLE}</style></head><body>"
        "<header><h1>Customer health, snapshot "
        f'<span data-metric="snapshot">{data.snapshot}</span></h1>'
        f"<p>Scores published in the warehouse for {data.snapshot}{previous}; "
        f"deployment {escape(deployment)}. Read from the published tables (cs-health report).</p></header><main>"
        + _overview(data)
        + _movements(data)
        + _actions(data)
        + _drags(data)
        + _validation(data)
        + "</main></body></html>\n"
    )
