"""`cs-health`: run the health-score graph through Dagster, make demo data, explain and calibrate a score."""

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cs_assets import hide_beta_notices, settings

READ_WAIT_ENV = "CS_HEALTH_READ_WAIT"
DEFAULT_READ_WAIT = 60.0


@dataclass
class Context:
    """One command's state directory and deployment; definitions and resources built from both."""

    home: Path
    config: str | None = None
    notifier_options: dict = field(default_factory=dict)

    @cached_property
    def deployment(self):
        from cs_assets.deployment import load_deployment

        return load_deployment(self.config)

    @cached_property
    def resources(self) -> dict:
        from resources import build_resources

        return build_resources(self.deployment.paths, self.home, **self.notifier_options)

    @cached_property
    def defs(self):
        from cs_assets.definitions import build_definitions

        return build_definitions(self.deployment, self.home, self.resources)

    @property
    def landing(self) -> Path:
        return settings.landing_dir(self.home)


def _context(args: argparse.Namespace) -> Context:
    home = Path(args.home or os.environ.get(settings.HOME_ENV) or settings.DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return Context(home=home, config=args.config)


@contextmanager
def _writing(ctx: Context, args: argparse.Namespace):
    """The home's writer lock for a whole command: a second run on the same home is told who runs."""
    from resources.home_lock import home_lock

    with home_lock(settings.warehouse_path(ctx.home), f"cs-health {args.command}", wait_seconds=args.wait):
        yield


def _instance(home: Path):
    """The home's Dagster instance (resources/instance.py: created once, every path inside the home)."""
    from resources.instance import home_instance

    return home_instance(home)


def run_config(as_of: dt.date) -> dict:
    """The snapshot date, explicit so the UI shows exactly what a run scored."""
    return {
        "resources": {"snapshot": {"config": {"as_of": as_of.isoformat()}}},
        # the full event log is in the instance (and the UI); the terminal gets the summary,
        # which names every failed step and check
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }


def _landing_is_empty(landing: Path) -> bool:
    return not landing.exists() or not any(landing.iterdir())


def cmd_demo_data(args: argparse.Namespace) -> int:
    from cs_assets.demo import PRODUCTS

    ctx = _context(args)
    product = PRODUCTS[args.product]
    landing = ctx.landing
    if not _landing_is_empty(landing) and not args.force:
        print(f"{landing} is not empty; pass --force to overwrite it with demo data", file=sys.stderr)
        return 2
    as_of = settings.parse_date(args.as_of, "--as-of") if args.as_of else None
    if args.force and landing.exists():
        # stale part files from a larger earlier run would otherwise be read as well
        shutil.rmtree(landing)
    started = time.perf_counter()
    summary = product.generate(landing, accounts=args.accounts, seed=args.seed, as_of=as_of)
    rows = ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
    print(
        f"{product.name} data for {summary.accounts:,} accounts (seed {summary.seed}, as of {summary.as_of}) "
        f"in {landing} [{time.perf_counter() - started:.1f} s]: {rows}"
    )
    if product.name != "demo":
        print(f"score it with its config: cs-health --home {ctx.home} --config {product.config_dir} run")
    return 0


def cmd_demo_api(args: argparse.Namespace) -> int:
    """Serve the landing data over HTTP on 127.0.0.1 through the connector presets' protocols."""
    from cs_assets.demo.api_server import TOKEN_ENV, DemoApi, demo_sources_config, demo_writeback_config, new_token

    ctx = _context(args)
    landing = _prepare_landing(ctx, args.accounts, args.seed)
    out = ctx.home / "demo_api"
    out.mkdir(parents=True, exist_ok=True)
    token = os.environ.get(TOKEN_ENV, "")
    token_path = out / "token"
    if not token:
        # never printed: written to a file only the owner can read
        token = new_token()
        token_path.touch(mode=0o600, exist_ok=True)
        token_path.chmod(0o600)
        token_path.write_text(token, encoding="utf-8")
    api = DemoApi.from_landing(landing, token=token, port=args.port)
    try:
        api.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    config_path = out / "sources.yaml"
    config_path.write_text(demo_sources_config(api.url, TOKEN_ENV), encoding="utf-8")
    writeback_path = out / "crm_writeback.yaml"
    writeback_path.write_text(demo_writeback_config(api.url, TOKEN_ENV), encoding="utf-8")
    print(f"demo API serving {landing} on {api.url} (127.0.0.1 only; Ctrl-C stops it)")
    print("  HubSpot CRM v3 style:  GET/POST /crm/v3/objects/companies[/search]   (bearer token)")
    print("  Zendesk incremental:   GET /api/v2/incremental/tickets.json          (basic auth)")
    print("  CSV export:            GET /spreadsheets/d/demo-surveys/export?format=csv")
    print("  JSON REST:             GET /api/v1/<source>                          (bearer token)")
    print("  CRM write-back:        POST /crm/v3/objects/companies/batch/update   (bearer token)")
    print(f"\nto pull every source through it, in another shell (from {Path.cwd()}):")
    if os.environ.get(TOKEN_ENV):
        print(f"  # {TOKEN_ENV} is already set in this shell: export the same value there")
    else:
        print(f'  export {TOKEN_ENV}="$(cat {token_path})"')
    print(f"  export CS_HEALTH_SOURCES_CONFIG={config_path}")
    print(f"  export CS_HEALTH_WRITEBACK={writeback_path}   # scores back to the demo CRM")
    print(f"  cs-health --home {ctx.home} run", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


def _prepare_landing(ctx: Context, accounts: int, seed: int) -> Path:
    """The landing area; an empty one gets the example product's data when the deployment is one."""
    from cs_assets.demo import product_for

    landing = ctx.landing
    if _landing_is_empty(landing):
        product = product_for(ctx.deployment.paths.config_dir)
        if product is None:
            raise ValueError(
                f"the landing area {landing} is empty: put your exports there in the layout of "
                f"{ctx.deployment.paths.sources} (docs/bring_your_own_data.md)"
            )
        print(f"landing area {landing} is empty: generating {product.name} data ({accounts:,} accounts, seed {seed})")
        product.generate(landing, accounts=accounts, seed=seed)
    return landing


def check_snapshot_dates(landing: Path, dates: list[dt.date]) -> None:
    """Refuse, before anything runs, dates the snapshot partitions do not have."""
    from cs_assets.partitions import CADENCE_ENV, HISTORY_START_ENV, history_start, is_snapshot_date

    wrong = [d for d in dates if not is_snapshot_date(d)]
    if wrong:
        raise ValueError(
            f"snapshot {wrong[0]} is not a snapshot date: with {CADENCE_ENV}=weekly snapshots are Sundays "
            f"(the end of each week), e.g. {wrong[0] - dt.timedelta(days=(wrong[0].weekday() + 1) % 7)}"
        )
    start = dt.date.fromisoformat(history_start())
    if min(dates) < start:
        raise ValueError(
            f"snapshot {min(dates)} is before the history start {start}: set {HISTORY_START_ENV} "
            f"to {min(dates)} or earlier (it decides the first snapshot partition), or score later dates"
        )
    known = settings.data_as_of(landing)
    if known is not None and max(dates) > known[0]:
        raise ValueError(
            f"snapshot {max(dates)} is after {known[0]}, the last day the landing data serves ({known[1]}): "
            f"score {known[0]} or earlier, or set {settings.AS_OF_ENV}={max(dates)} to score that day anyway "
            "(its sources will be checked, and refused, as stale)"
        )
    last = settings.yesterday()
    if max(dates) > last:
        raise ValueError(
            f"snapshot {max(dates)} is not a complete day yet: the newest snapshot is yesterday (UTC), {last}"
        )


def execute_snapshots(ctx: Context, dates: list[dt.date], command: str = "run"):
    """One in-process run of the scoring job for a snapshot date or a contiguous range of them,
    tagged with the `command` that launched it (`cs-health status` names it)."""
    from cs_assets.definitions import HEALTH_SCORE_JOB
    from cs_assets.partitions import run_tags_for
    from cs_assets.run_origin import LAUNCHED_BY_TAG

    check_snapshot_dates(ctx.landing, dates)
    job = ctx.defs.resolve_job_def(HEALTH_SCORE_JOB)
    return job.execute_in_process(
        instance=_instance(ctx.home),
        run_config=run_config(max(dates)),
        tags={**run_tags_for(dates), LAUNCHED_BY_TAG: command},
        raise_on_error=False,
    )


def publish_report(ctx: Context, dates: list[dt.date], since: dt.datetime) -> list[str]:
    """What this run wrote to the warehouse, read back from it: published snapshots and deliveries."""
    path = settings.warehouse_path(ctx.home)
    if not path.exists():
        return ["published: nothing (no warehouse yet)"]
    con = _connect(ctx.home)
    try:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'published'"
            ).fetchall()
        }
        written = []
        if "account_health" in tables:
            written = con.execute(
                "SELECT snapshot_date, count(*) FROM published.account_health WHERE snapshot_date BETWEEN ? AND ? "
                "AND computed_at >= ? GROUP BY snapshot_date ORDER BY snapshot_date",
                [min(dates), max(dates), since.replace(microsecond=0)],
            ).fetchall()
        sent = 0
        if "action_deliveries" in tables:
            sent = con.execute(
                "SELECT count(*) FROM published.action_deliveries WHERE delivered_at >= ?", [since]
            ).fetchone()[0]
    finally:
        con.close()
    lines = []
    if written:
        first, last = written[0][0], written[-1][0]
        span = f"{first}" if first == last else f"{first}..{last}"
        lines.append(
            f"published: {len(written)} of {len(dates)} snapshot(s) ({span}), {written[-1][1]:,} accounts in the newest"
        )
    else:
        lines.append("published: nothing; the last published scores are unchanged")
    lines.append(f"actions sent by this run: {sent}")
    return lines


def _report_failure(ctx: Context, result, what: str, dates: list[dt.date], since: dt.datetime) -> int:
    print(f"run {result.run_id} FAILED for {what}.", file=sys.stderr)
    for line in failure_reasons(result.all_events):
        print(f"  {line}", file=sys.stderr)
    for line in publish_report(ctx, dates, since):
        print(f"  {line}", file=sys.stderr)
    print('  (`cs-health status` shows the state of every source; README "Checks" says what to do)', file=sys.stderr)
    return 1


def _report_warnings(result) -> None:
    warned = [line for line in failure_reasons(result.all_events) if "[WARN]" in line]
    if warned:
        print(f"{len(warned)} warning(s) (WARN checks that failed; they did not stop the publish):")
        for line in warned:
            print(f"  {line}")


def _score(ctx: Context, dates: list[dt.date], what: str, started: float, command: str = "run") -> int:
    since = dt.datetime.now(dt.UTC)
    try:
        result = execute_snapshots(ctx, dates, command)
    except KeyboardInterrupt:
        print(f"\ninterrupted while scoring {what}:", file=sys.stderr)
        for line in publish_report(ctx, dates, since):
            print(f"  {line}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    if not result.success:
        return _report_failure(ctx, result, what, dates, since)
    print(f"run {result.run_id} succeeded: {what} published to {settings.warehouse_path(ctx.home)} in {elapsed:.1f} s")
    for line in publish_report(ctx, dates, since)[1:]:
        print(line)
    _report_warnings(result)
    _print_band_summary(ctx.home, max(dates))
    return 0


def _validate_config(ctx: Context) -> None:
    """Every config file valid before anything runs (the definitions check the rest as they load)."""
    from cs_assets.config_schema import load_every_file

    load_every_file(ctx.deployment)


def cmd_run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    _validate_config(ctx)
    started = time.perf_counter()
    with _writing(ctx, args):
        landing = _prepare_landing(ctx, args.accounts, args.seed)
        as_of = _default_snapshot(args.as_of, landing)
        return _score(ctx, [as_of], f"snapshot {as_of}", started)


def _default_snapshot(explicit: str | None, landing: Path) -> dt.date:
    """An explicit date as it is (checked later); else the newest snapshot date the data serves
    (weekly: the Sunday on or before it)."""
    from cs_assets.partitions import snapshot_on_or_before

    day = settings.resolve_as_of(explicit, landing)
    return day if explicit else snapshot_on_or_before(day)


def cmd_backfill(args: argparse.Namespace) -> int:
    ctx = _context(args)
    _validate_config(ctx)
    if args.days < 1:
        raise ValueError(f"--days must be at least 1, got {args.days}")
    if args.snapshots_per_run is not None and args.snapshots_per_run < 1:
        raise ValueError(f"--snapshots-per-run must be at least 1, got {args.snapshots_per_run}")
    started = time.perf_counter()
    with _writing(ctx, args):
        landing = _prepare_landing(ctx, args.accounts, args.seed)
        from cs_assets.partitions import step_days

        end = _default_snapshot(args.end, landing)
        # the snapshots of the last --days days: every day, or every Sunday when weekly
        step = step_days()
        dates = [end - dt.timedelta(days=i * step) for i in range((args.days - 1) // step, -1, -1)]
        # one run holds every snapshot's rows at once (the per-indicator points are accounts x
        # indicators x snapshots): runs of fewer snapshots, oldest first, bound the memory
        size = args.snapshots_per_run or len(dates)
        for i in range(0, len(dates), size):
            part = dates[i : i + size]
            code = _score(ctx, part, f"{len(part)} snapshot(s) {part[0]}..{part[-1]}", started, "backfill")
            if code != 0:
                if i + size < len(dates):
                    print(f"  not scored: {dates[i + size]}..{dates[-1]} (after the failed run)", file=sys.stderr)
                return code
        return 0


def failure_reasons(events) -> list[str]:
    """One line per failed step and failed check of a run, in the words of the step or check."""
    lines = []
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            cause = error.cause if error is not None and error.cause is not None else error
            message = cause.message.strip() if cause is not None else "no error message"
            if "DagsterAssetCheckFailedError" in (error.cls_name or "") or "Blocking check" in message:
                continue  # the failed checks below say why
            first = message.splitlines()[0] if message else message
            # "package.module.SourceDataError: source x ..." -> "source x ..."
            head, _, rest = first.partition(": ")
            if rest and "." in head and " " not in head:
                first = rest
            lines.append(f"step {event.step_key} failed: {first}")
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                severity = evaluation.severity.value if evaluation.severity else "ERROR"
                reason = evaluation.description or "failed"
                lines.append(
                    f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} [{severity}]: {reason}"
                )
    return lines


def _connect(home: Path):
    """A read-only connection; while a run writes, it waits (at most $CS_HEALTH_READ_WAIT s) and says so."""
    from resources.home_lock import open_duckdb

    path = settings.warehouse_path(home)
    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `cs-health run` first")
    wait = float(os.environ.get(READ_WAIT_ENV) or DEFAULT_READ_WAIT)
    return open_duckdb(str(path), read_only=True, wait_seconds=wait, on_wait=lambda m: print(m, file=sys.stderr))


def _print_band_summary(home: Path, as_of: dt.date) -> None:
    con = _connect(home)
    try:
        rows = con.execute(
            """
            SELECT band, count(*) AS accounts, round(avg(health_score), 1) AS avg_score,
                   count(*) FILTER (WHERE triage_priority = 'P1') AS p1
            FROM published.account_health WHERE snapshot_date = ?
            GROUP BY band ORDER BY min(health_score)
            """,
            [as_of],
        ).fetchall()
    finally:
        con.close()
    total = sum(r[1] for r in rows)
    print(f"\n{'band':<8}{'accounts':>10}{'share':>8}{'avg score':>11}{'triage P1':>11}")
    for band, n, avg, p1 in rows:
        print(f"{band:<8}{n:>10,}{n / total:>8.1%}{float(avg):>11.1f}{p1:>11,}")
    print(f"{'total':<8}{total:>10,}")


def cmd_explain(args: argparse.Namespace) -> int:
    ctx = _context(args)
    con = _connect(ctx.home)
    account = args.account_id.strip()
    try:
        if args.snapshot:
            snapshot = settings.parse_date(args.snapshot, "--snapshot")
        else:
            snapshot = con.execute(
                "SELECT max(snapshot_date) FROM published.account_health WHERE account_id = ?", [account]
            ).fetchone()[0]
        if snapshot is None:
            print(f"account {account!r} has no published score in {settings.warehouse_path(ctx.home)}", file=sys.stderr)
            return 2
        head = con.execute(
            "SELECT health_score, co_score, cx_score, band, lifecycle_stage, size_tier, triage_priority, "
            "csm_owner, model_version, segment_model FROM published.account_health "
            "WHERE account_id = ? AND snapshot_date = ?",
            [account, snapshot],
        ).fetchone()
        if head is None:
            print(f"account {account!r} has no published score for snapshot {snapshot}", file=sys.stderr)
            return 2
        parts = con.execute(
            "SELECT subscore, indicator, raw_value, is_missing, indicator_score, effective_weight, points, max_points "
            "FROM published.account_health_contributions WHERE account_id = ? AND snapshot_date = ? "
            "ORDER BY subscore, max_points - points DESC, indicator",
            [account, snapshot],
        ).fetchall()
        notes = _notes(con, account, snapshot)
    finally:
        con.close()
    score, co, cx, band, stage, tier, triage, owner, version, segment = head
    shown = lambda v: "no data" if v is None else v  # noqa: E731
    print(f"{account}  snapshot {snapshot}  model {version}  segment model {segment or 'default'}")
    print(
        f"health {score} ({band})  CO {shown(co)}  CX {shown(cx)}  stage {stage}  tier {shown(tier)}  "
        f"triage {triage}  owner {owner or 'unassigned'}"
    )
    # a person's judgement (a CSM's sentiment) is shown apart from what was measured
    catalogue = ctx.deployment.catalogue.indicators
    judged = {name for name, ind in catalogue.items() if ind.judgement}
    header = f"{'sub':<4}{'indicator':<30}{'value':>12}{'score':>8}{'weight':>8}{'points':>10}{'of max':>8}"
    print(f"\nmeasured\n{header}")
    for row in [p for p in parts if p[1] not in judged]:
        print(_part_line(row))
    judgement = [p for p in parts if p[1] in judged]
    if judgement:
        print("\njudgement (recorded by a person, not measured)\n" + header)
        for row in judgement:
            expiry = catalogue[row[1]].window_days
            note = notes.get(row[1])
            print(_part_line(row) + f"  expires {expiry} days after it was recorded")
            if note:
                print(f"{'':<4}  note: {note}  (kept, never scored)")
    total = sum(p[6] for p in parts)
    print(f"{'':<4}{'total':<30}{'':>12}{'':>8}{'':>8}{total:>10}")
    if args.since:
        _print_change(ctx.home, account, settings.parse_date(args.since, "--since"), snapshot)
    if args.trace:
        _print_trace(ctx.home, snapshot)
    return 0


def _part_line(row: tuple) -> str:
    sub, ind, raw, missing, iscore, weight, pts, mx = row
    value = "no data" if missing else f"{raw:.4g}"
    scored = "excl." if iscore is None else f"{iscore:.0f}"
    return f"{sub:<4}{ind:<30}{value:>12}{scored:>8}{weight:>8.1%}{pts:>10}{mx:>8.2f}"


def _notes(con, account: str, snapshot: dt.date) -> dict[str, str]:
    """The notes kept beside the account's `latest` indicators on that snapshot (none before this release)."""
    from cs_assets.publish.tables import NOTES_TABLE, table_columns

    if not table_columns(con, NOTES_TABLE):
        return {}
    rows = con.execute(
        f"SELECT indicator, note FROM {NOTES_TABLE} WHERE account_id = ? AND snapshot_date = ? AND note IS NOT NULL",
        [account, snapshot],
    ).fetchall()
    return dict(rows)


def _print_change(home: Path, account: str, since: dt.date, until: dt.date) -> None:
    from cs_assets.publish.queries import score_change, snapshot_on_or_before

    con = _connect(home)
    try:
        start = snapshot_on_or_before(con, account, since)
        if start is None:
            print(f"\nno published snapshot of {account} on or before {since}: nothing to compare with")
            return
        change = score_change(con, account, start, until)
    finally:
        con.close()
    delta = change["score_after"] - change["score_before"]
    print(f"\nchange since {start}: {change['score_before']} -> {change['score_after']} ({delta:+})")
    if change["model_before"] != change["model_after"]:
        print(
            f"model {change['model_before']} -> {change['model_after']}: indicator parts use model "
            f"{change['model_before']}; the rest is the model change"
        )
    if change["segment_before"] != change["segment_after"]:
        print(
            f"segment model {change['segment_before']} -> {change['segment_after']}: indicator parts use "
            f"{change['segment_before']}; the rest is the segment change"
        )
    print(f"{'part':<34}{'before':>10}{'after':>10}{'change':>10}")
    for _, indicator, before, after, part in change["parts"].iter_rows():
        if part != 0:
            print(f"{indicator:<34}{before:>10}{after:>10}{part:>+10}")
    print(f"{'total':<34}{'':>10}{'':>10}{change['parts']['change'].sum():>+10}")


def _print_trace(home: Path, snapshot: dt.date) -> None:
    from cs_assets.publish.queries import lineage

    con = _connect(home)
    try:
        rows = lineage(con, snapshot)
    finally:
        con.close()
    if rows.height == 0:
        print(f"\nno lineage recorded for snapshot {snapshot}")
        return
    print(f"\nlineage of snapshot {snapshot} (published by run {rows['publish_run_id'][0]}):")
    print(f"{'asset':<28}{'run id':<38}{'data version':<18}materialized at")
    for asset, run_id, version, at, _ in rows.iter_rows():
        print(f"{asset:<28}{run_id or '-':<38}{(version or '-')[:16]:<18}{at.isoformat() if at else '-'}")


def cmd_actions(args: argparse.Namespace) -> int:
    from cs_assets.actions.evaluate import OPEN
    from cs_assets.actions.store import ACTIONS_TABLE

    ctx = _context(args)
    con = _connect(ctx.home)
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'published' AND table_name = 'account_actions'"
        ).fetchall()[0][0]
        if not exists:
            print("no actions yet: publish a snapshot first (`cs-health run`)")
            return 0
        where, params = [], []
        if not args.all:
            where.append("status = ?")
            params.append(OPEN)
        if args.owner:
            where.append("owner = ?")
            params.append(args.owner)
        rows = con.execute(
            f"SELECT priority, account_id, rule, owner, first_snapshot, status, reason, action FROM {ACTIONS_TABLE} "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} "
            "ORDER BY priority, first_snapshot DESC, account_id, rule LIMIT ?",
            [*params, args.limit],
        ).fetchall()
    finally:
        con.close()
    for priority, account, rule, owner, since, status, reason, action in rows:
        print(f"{priority}  {account}  {rule}  owner {owner or 'unassigned'}  since {since}  [{status}]")
        print(f"    {reason}")
        print(f"    -> {action}")
    print(f"{len(rows)} action(s) shown" + ("" if args.all else " (open only; --all for every status)"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The health report of a published snapshot, as one HTML file (what the health_report asset writes)."""
    from cs_assets.report.assets import write_report
    from cs_assets.report.data import read_report_data
    from cs_assets.scoring.model_config import load_model

    ctx = _context(args)
    model = load_model(ctx.deployment.paths.model, ctx.deployment.catalogue)
    snapshot = dt.date.fromisoformat(args.snapshot) if args.snapshot else None
    con = _connect(ctx.home)
    try:
        data = read_report_data(con, [(b.name, b.min_score) for b in model.bands], snapshot)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        con.close()
    directory = Path(args.out).resolve() if args.out else settings.reports_dir(ctx.home)
    path = write_report(data, directory, str(ctx.deployment.paths.config_dir))
    print(path)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import dagster as dg

    from cs_assets.indicators.compiler import as_of_end
    from cs_assets.run_origin import launched_by

    ctx = _context(args)
    as_of = settings.resolve_as_of(args.as_of, ctx.landing)
    end = as_of_end(as_of)
    instance = _instance(ctx.home)
    dq = ctx.deployment.dq
    check_keys = list(ctx.defs.resolve_asset_graph().asset_check_keys)
    latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)

    print(f"state: {ctx.home}   config: {ctx.deployment.paths.config_dir}   as-of: {as_of}")
    print(f"\n{'source':<20}{'newest record':<28}{'age':>10}{'limit':>8}  checks")
    for name in ctx.deployment.contract.sources:
        key = dg.AssetKey(name)
        event = instance.get_latest_materialization_event(key)
        newest, age = "never loaded", ""
        if event is not None and event.asset_materialization is not None:
            value = event.asset_materialization.metadata.get("newest_timestamp")
            newest = value.value if value is not None else "unknown"
            try:
                hours = (end - dt.datetime.fromisoformat(newest)).total_seconds() / 3600
                age = f"{hours / 24:.1f}d" if abs(hours) >= 48 else f"{hours:.1f}h"
            except ValueError:
                age = "?"
        limit = dq.sources[name].max_age_hours
        limit_text = f"{limit / 24:.0f}d" if limit >= 48 else f"{limit:.0f}h"
        results = []
        for check_key in sorted((k for k in check_keys if k.asset_key == key), key=lambda k: k.name):
            record = latest_checks.get(check_key)
            evaluation = (
                record.event.dagster_event.event_specific_data
                if record and record.event and record.event.dagster_event
                else None
            )
            if evaluation is None or not hasattr(evaluation, "passed"):
                # planned but never executed: an upstream step or blocking check stopped the run
                results.append((check_key.name, "not run", None))
            else:
                results.append((check_key.name, "ok" if evaluation.passed else "FAILED", evaluation.description))
        passed = sum(1 for _, state, _ in results if state == "ok")
        print(f"{name:<20}{newest[:26]:<28}{age:>10}{limit_text:>8}  {passed}/{len(results)} passed")
        for check_name, state, description in results:
            if state != "ok":
                print(f"{'':<22}{check_name}: {state}{': ' + description if description else ''}")

    # the newest run of any path (the CLI, the UI, a sensor, a schedule, automation), not only ours
    runs = instance.get_runs(limit=1)
    if runs:
        run = runs[0]
        print(f"\nlast run: {run.run_id} {run.status.value}, {launched_by(run.tags)} ({run.job_name})")
        if run.status != dg.DagsterRunStatus.SUCCESS:
            events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event is not None]
            for line in failure_reasons(events):
                print(f"  {line}")
    else:
        print("\nlast run: none (run `cs-health run`)")

    path = settings.warehouse_path(ctx.home)
    if not path.exists():
        print("published: nothing yet")
        return 0
    con = _connect(ctx.home)
    try:
        row = con.execute(
            "SELECT snapshot_date, max(computed_at), count(*), any_value(model_version) FROM published.account_health "
            "GROUP BY snapshot_date ORDER BY snapshot_date DESC LIMIT 1"
        ).fetchone()
    except Exception:  # the table does not exist yet
        row = None
    finally:
        con.close()
    if row is None:
        print("published: nothing yet")
    else:
        snapshot, computed_at, n, version = row
        print(f"published: snapshot {snapshot} ({n:,} accounts, model {version}) written at {computed_at}")
        # which run wrote the newest snapshot, and by which path: the start of "why did it change?"
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["published", "account_health"]), asset_partitions=[str(snapshot)]
            ),
            limit=1,
        ).records
        writer = instance.get_run_by_id(record[0].run_id) if record else None
        if writer is not None:
            print(f"  by run {writer.run_id}, {launched_by(writer.tags)}")
    return 0


def _materialize_validation(ctx: Context, selection: list[str]):
    """A run of validation assets on the home's instance (its metadata stays visible in the UI)."""
    import dagster as dg

    from cs_assets.definitions import VALIDATION_JOB

    if not settings.warehouse_path(ctx.home).exists():
        raise ValueError(
            f"no warehouse at {settings.warehouse_path(ctx.home)}: backfill history first (cs-health backfill --days 365)"
        )
    job = ctx.defs.resolve_job_def(VALIDATION_JOB)
    return job.execute_in_process(
        instance=_instance(ctx.home),
        asset_selection=[dg.AssetKey(a) for a in selection],
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    from cs_assets.validation.assets import MODEL_CALIBRATION, REPORT_FILE

    ctx = _context(args)
    started = time.perf_counter()
    with _writing(ctx, args):
        result = _materialize_validation(ctx, [MODEL_CALIBRATION])
    if not result.success:
        print(f"run {result.run_id} FAILED:", file=sys.stderr)
        for line in failure_reasons(result.all_events):
            print(f"  {line}", file=sys.stderr)
        return 1
    if not result.asset_materializations_for_node(MODEL_CALIBRATION):
        print("nothing calibrated:", file=sys.stderr)
        for line in _step_warnings(ctx, result.run_id):
            print(f"  {line}", file=sys.stderr)
        return 1
    report = json.loads((settings.models_dir(ctx.home) / REPORT_FILE).read_text(encoding="utf-8"))
    print(
        f"calibrated in {time.perf_counter() - started:.1f} s (run {result.run_id}); candidate written to "
        f"{report['candidate_file']} (not promoted)"
    )
    print_calibration_report(report)
    return 0


def _step_warnings(ctx: Context, run_id: str) -> list[str]:
    instance = _instance(ctx.home)
    return [
        e.user_message for e in instance.all_logs(run_id) if e.level >= 30 and e.user_message and not e.dagster_event
    ]


def print_calibration_report(report: dict) -> None:
    split = (
        f"time split at {report['split_date']}"
        if report["split"] == "time"
        else "seeded stratified split (one outcome date)"
    )
    print(
        f"\noutcomes: {report['train_outcomes']} train ({report['train_churned']} churned), "
        f"{report['holdout_outcomes']} holdout ({report['holdout_churned']} churned); {split}; "
        f"indicators {report['horizon_days']} days before each outcome"
    )
    print("\nholdout ROC AUC (no holdout outcome was used to fit anything):")
    print(f"  candidate {report['candidate_model']:<14}{report['candidate_auc']}")
    print(f"  current   {report['current_model']:<14}{report['current_auc']}")
    print(f"  best single indicator ({report['best_single_indicator']}): {report['best_single_auc']}")
    print(f"\n{'band':<10}{'candidate: accounts':>20}{'churn':>8}{'current: accounts':>19}{'churn':>8}")
    current = {b["band"]: b for b in report["current_bands"]}
    for band in report["candidate_bands"]:
        other = current.get(band["band"], {})
        churn = f"{band['churn_rate']:.1%}" if band["churn_rate"] is not None else "-"
        other_churn = f"{other['churn_rate']:.1%}" if other.get("churn_rate") is not None else "-"
        print(f"{band['band']:<10}{band['accounts']:>20}{churn:>8}{other.get('accounts', 0):>19}{other_churn:>8}")
    bands = report["migration"]["rows_current_columns_candidate"]
    print("\nband migration on the holdout (rows: current, columns: candidate):")
    print(f"  {'':<10}" + "".join(f"{b:>10}" for b in bands))
    for band, counts in zip(bands, report["migration"]["counts"]):
        print(f"  {band:<10}" + "".join(f"{c:>10}" for c in counts))
    print(f"\n{'indicator':<32}{'weight':>8}  note")
    for ind in sorted(report["indicators"], key=lambda i: -i["weight_share"]):
        print(f"{ind['indicator']:<32}{ind['weight_share'] + 0.0:>8.1%}  {ind['note']}")
    print(f"\nbands: {report['bands']}")
    for segment in report.get("segments", []):
        auc = f"holdout AUC {segment['current_auc']} -> {segment['candidate_auc']} on {segment['holdout_outcomes']} outcome(s)"
        print(
            f"segment {segment['segment']}: {segment['note']} ({segment['train_outcomes']} training outcome(s); {auc})"
        )


def cmd_validate(args: argparse.Namespace) -> int:
    from cs_assets.validation.assets import MODEL_CALIBRATION, TARGET_TIERS

    ctx = _context(args)
    started = time.perf_counter()
    selection = ["score_validation", "cs_contribution_estimate", TARGET_TIERS] + (
        [MODEL_CALIBRATION] if args.calibrate else []
    )
    with _writing(ctx, args):
        result = _materialize_validation(ctx, selection)
    if not result.success:
        print(f"run {result.run_id} FAILED:", file=sys.stderr)
        for line in failure_reasons(result.all_events):
            print(f"  {line}", file=sys.stderr)
        return 1
    con = _connect(ctx.home)
    try:
        rows = con.execute(
            "SELECT horizon_days, outcomes, churned, auc, top_decile_lift, band_monotonic FROM published.score_validation ORDER BY horizon_days"
        ).fetchall()
    finally:
        con.close()
    print(
        f"validation run {result.run_id} in {time.perf_counter() - started:.1f} s "
        f"(metadata in the Dagster instance {settings.dagster_home(ctx.home)})"
    )
    print(f"\n{'horizon':>8}{'outcomes':>10}{'churned':>9}{'AUC':>8}{'lift':>7}  band churn")
    for days, n, churned, auc, lift, monotonic in rows:
        print(
            f"{days:>7}d{n:>10}{churned:>9}{auc if auc is not None else 'n/a':>8}{lift if lift is not None else 'n/a':>7}  "
            f"{'monotonic' if monotonic else 'NOT monotonic'}"
        )
    _print_tiers(ctx.home)
    for line in failure_reasons(result.all_events):
        print(line)
    for line in _step_warnings(ctx, result.run_id):
        print(f"note: {line}")
    return 0


def _print_tiers(home: Path, top: int = 5) -> None:
    """The best-ranked target tiers (published.target_tiers), when the run ranked any."""
    from cs_assets.publish.tables import table_columns
    from cs_assets.validation.assets import TIERS_TABLE

    con = _connect(home)
    try:
        if not table_columns(con, TIERS_TABLE):
            return
        tiers = con.sql(f"SELECT * FROM {TIERS_TABLE} WHERE rank IS NOT NULL ORDER BY rank LIMIT {int(top)}").pl()
        total = con.sql(f"SELECT count(*) FROM {TIERS_TABLE}").fetchall()[0][0]
    finally:
        con.close()
    print(f"\ntarget tiers (best {len(tiers)} of {total}; published.target_tiers):")
    by = [c for c in tiers.columns[1 : tiers.columns.index("accounts")]]
    for row in tiers.iter_rows(named=True):
        growth = "n/a" if row["arr_growth"] is None else f"{row['arr_growth']:+.1%}"
        print(f"  {row['rank']:>2}. {' x '.join(str(row[c]) for c in by):<36} {row['note']}; ARR {growth}")


def ui_environment(ctx: Context) -> dict[str, str]:
    """The environment `dagster dev` needs to show this home: its instance (created with the
    shipped instance settings, one run at a time), its state and its deployment."""
    env = dict(os.environ)
    env[settings.HOME_ENV] = str(ctx.home)
    env["DAGSTER_HOME"] = str(settings.dagster_home(ctx.home))
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    if ctx.config:
        from cs_assets.deployment import CONFIG_ENV

        env[CONFIG_ENV] = str(Path(ctx.config).resolve())
    return env


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    ctx = _context(args)
    _validate_config(ctx)  # a broken config fails here, naming file and key, not in the UI's load error
    _instance(ctx.home)
    landing = ctx.landing
    if _landing_is_empty(landing):
        print(
            f"note: the landing area {landing} is empty: `cs-health demo-data` (or your exports) first", file=sys.stderr
        )
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(settings.REPO_ROOT / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    print(
        f"Dagster UI on http://{args.host}:{args.port} for the home {ctx.home} "
        f"(instance {settings.dagster_home(ctx.home)}); Ctrl-C stops it"
    )
    try:
        return subprocess.run(command, env=ui_environment(ctx), cwd=settings.REPO_ROOT).returncode
    except KeyboardInterrupt:
        return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from cs_assets.config_schema import write_schemas

    out = Path(args.out).resolve()
    for path in write_schemas(out):
        print(path)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from cs_assets.config_schema import check_deployment

    ctx = _context(args)
    for line in check_deployment(ctx.deployment):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cs-health",
        description="Customer health scores on Dagster. State lives under $CS_HEALTH_HOME (default ./.cs_health); "
        "the config directory (sources, indicators, model, checks, actions, validation) is $CS_HEALTH_CONFIG "
        "(default: the repository's config/, the demo product).",
    )
    parser.add_argument("--home", help="state directory (overrides $CS_HEALTH_HOME)")
    parser.add_argument("--config", help="config directory of the deployment (overrides $CS_HEALTH_CONFIG)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long a command that writes (run, backfill, validate, calibrate) waits for another one on the "
        "same home before giving up (default 0: say who runs and stop)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize the whole graph through Dagster and print a band summary")
    run.add_argument(
        "--as-of",
        help="snapshot date YYYY-MM-DD (default: $CS_HEALTH_AS_OF, else the demo data's date, else yesterday UTC)",
    )
    run.add_argument(
        "--accounts",
        type=int,
        default=2000,
        help="example accounts to generate when the landing area is empty (default 2000)",
    )
    run.add_argument("--seed", type=int, default=7, help="example data seed (default 7)")
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser(
        "backfill",
        help="score and publish the last N snapshot dates in one run, or runs of --snapshots-per-run (re-running a date replaces it)",
    )
    backfill.add_argument(
        "--days",
        type=int,
        required=True,
        help="days of history to score, ending with --end: a snapshot per day (per Sunday with CS_HEALTH_CADENCE=weekly)",
    )
    backfill.add_argument("--end", help="last snapshot date YYYY-MM-DD (default as for `run --as-of`)")
    backfill.add_argument(
        "--snapshots-per-run",
        type=int,
        help="score the snapshots in runs of at most N, oldest first (default: all in one run); "
        "bounds the memory of a long backfill of a large customer base",
    )
    backfill.add_argument(
        "--accounts",
        type=int,
        default=2000,
        help="example accounts to generate when the landing area is empty (default 2000)",
    )
    backfill.add_argument("--seed", type=int, default=7, help="example data seed (default 7)")
    backfill.set_defaults(func=cmd_backfill)

    demo = sub.add_parser("demo-data", help="write deterministic example exports into the landing area")
    demo.add_argument(
        "--product",
        choices=["demo", "ledgerly"],
        default="demo",
        help="demo: the data-integration SaaS of config/ (default); ledgerly: the invoicing app of examples/ledgerly/config",
    )
    demo.add_argument("--accounts", type=int, default=2000, help="number of accounts (default 2000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--as-of", help="the data's 'today' (default 2026-10-31)")
    demo.add_argument("--force", action="store_true", help="overwrite a non-empty landing area")
    demo.set_defaults(func=cmd_demo_data)

    demo_api = sub.add_parser(
        "demo-api", help="serve the demo data over HTTP on 127.0.0.1 (HubSpot-, Zendesk-, CSV- and JSON-style APIs)"
    )
    demo_api.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    demo_api.add_argument(
        "--accounts",
        type=int,
        default=2000,
        help="demo accounts to generate when the landing area is empty (default 2000)",
    )
    demo_api.add_argument("--seed", type=int, default=7, help="demo data seed (default 7)")
    demo_api.set_defaults(func=cmd_demo_api)

    status = sub.add_parser(
        "status", help="per source: newest record, age, limit, last check results; last run and publish"
    )
    status.add_argument("--as-of", help="measure ages from the end of this day (default as for `run`)")
    status.set_defaults(func=cmd_status)

    explain = sub.add_parser("explain", help="print an account's score breakdown")
    explain.add_argument("account_id")
    explain.add_argument("--snapshot", help="snapshot date YYYY-MM-DD (default: the latest)")
    explain.add_argument("--since", help="also split the change since this date's snapshot into per-indicator parts")
    explain.add_argument(
        "--trace", action="store_true", help="also list the source loads (run ids, data versions) that fed the snapshot"
    )
    explain.set_defaults(func=cmd_explain)

    actions = sub.add_parser("actions", help="list open actions (what to do for which account, and why), P1 first")
    actions.add_argument("--all", action="store_true", help="also cleared and no-longer-scored actions")
    actions.add_argument("--owner", help="only this CSM's actions")
    actions.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    actions.set_defaults(func=cmd_actions)

    report = sub.add_parser(
        "report", help="write the HTML health report of a published snapshot (default: the newest) and print its path"
    )
    report.add_argument("--snapshot", help="the published snapshot date (YYYY-MM-DD; default: the newest)")
    report.add_argument("--out", help="directory to write it to (default $CS_HEALTH_HOME/reports)")
    report.set_defaults(func=cmd_report)

    calibrate = sub.add_parser(
        "calibrate",
        help="fit a candidate model (scoring functions, weights, bands) from the published history and outcomes; "
        "writes it under $CS_HEALTH_HOME/models/ with its holdout report, never promotes it",
    )
    calibrate.set_defaults(func=cmd_calibrate)

    validate = sub.add_parser(
        "validate",
        help="validate the published scores against outcomes (validation_job on this home's Dagster instance)",
    )
    validate.add_argument("--calibrate", action="store_true", help="also run the calibration")
    validate.set_defaults(func=cmd_validate)

    ui = sub.add_parser(
        "ui", help="start the Dagster UI (dagster dev) on this home's instance: the CLI's runs, one run at a time"
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: the UI has no login)")
    ui.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    ui.set_defaults(func=cmd_ui)

    config = sub.add_parser("config", help="the config files: check a deployment, or write their JSON Schemas")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    schema = config_sub.add_parser("schema", help="write the JSON Schema of every config file (for editors)")
    schema.add_argument(
        "--out", default="config/schema", help="directory to write <file>.schema.json into (default config/schema)"
    )
    schema.set_defaults(func=cmd_config_schema)
    check = config_sub.add_parser(
        "check", help="load and cross-check the deployment's config files; list what it computes and leaves out"
    )
    check.set_defaults(func=cmd_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cs_assets.config_file import ConfigFileError
    from resources.home_lock import HomeBusyError

    args = build_parser().parse_args(argv)
    # pytest restores warning filters between tests: hide Dagster's beta notices again here
    hide_beta_notices()
    try:
        return args.func(args)
    except (ValueError, ConfigFileError) as exc:
        print(f"cs-health: {exc}", file=sys.stderr)
        return 2
    except HomeBusyError as exc:
        print(f"cs-health: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
