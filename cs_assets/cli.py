"""`cs-health`: run the health-score graph through Dagster, make demo data, explain a score."""

import argparse
import datetime as dt
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from cs_assets import settings
from cs_assets.partitions import run_tags_for

DAGSTER_YAML = """\
# Instance used by `cs-health` runs (same storage the UI shows when DAGSTER_HOME points here).
telemetry:
  enabled: false
"""


def _set_home(home: str | None) -> Path:
    # Resources read $CS_HEALTH_HOME when the definitions are imported, so set it first.
    if home:
        os.environ[settings.HOME_ENV] = str(Path(home).resolve())
    path = settings.home_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _instance(home: Path):
    import dagster as dg

    dagster_home = settings.dagster_home(home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return dg.DagsterInstance.from_config(str(dagster_home))


def run_config(home: Path, as_of: dt.date) -> dict:
    """Paths and snapshot date for one run, explicit so the UI shows exactly what a run used."""
    return {
        "resources": {
            "landing": {"config": {"landing_dir": str(settings.landing_dir(home))}},
            "io_manager": {"config": {"base_dir": str(settings.staging_dir(home))}},
            "warehouse": {"config": {"database": str(settings.warehouse_path(home))}},
            "health_model": {"config": {"path": str(settings.model_path())}},
            "snapshot": {"config": {"as_of": as_of.isoformat()}},
        },
        # the full event log is in the instance (and the UI); the terminal gets the summary,
        # which names every failed step and check
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }


def _landing_is_empty(landing: Path) -> bool:
    return not landing.exists() or not any(landing.iterdir())


def cmd_demo_data(args: argparse.Namespace) -> int:
    from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data

    home = _set_home(args.home)
    landing = settings.landing_dir(home)
    if not _landing_is_empty(landing) and not args.force:
        print(f"{landing} is not empty; pass --force to overwrite it with demo data", file=sys.stderr)
        return 2
    as_of = settings.parse_date(args.as_of, "--as-of") if args.as_of else DEMO_AS_OF
    if args.force and landing.exists():
        # stale part files from a larger earlier run would otherwise be read as well
        shutil.rmtree(landing)
    started = time.perf_counter()
    summary = generate_demo_data(landing, accounts=args.accounts, seed=args.seed, as_of=as_of)
    rows = ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
    print(f"demo data for {summary.accounts:,} accounts (seed {summary.seed}, as of {summary.as_of}) "
          f"in {landing} [{time.perf_counter() - started:.1f} s]: {rows}")
    return 0


def cmd_demo_api(args: argparse.Namespace) -> int:
    """Serve the landing data over HTTP on 127.0.0.1 through the connector presets' protocols."""
    from cs_assets.demo.api_server import TOKEN_ENV, DemoApi, demo_sources_config, new_token

    home = _set_home(args.home)
    landing = _prepare_landing(home, args.accounts, args.seed)
    out = home / "demo_api"
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
    print(f"demo API serving {landing} on {api.url} (127.0.0.1 only; Ctrl-C stops it)")
    print("  HubSpot CRM v3 style:  GET/POST /crm/v3/objects/companies[/search]   (bearer token)")
    print("  Zendesk incremental:   GET /api/v2/incremental/tickets.json          (basic auth)")
    print("  CSV export:            GET /spreadsheets/d/demo-surveys/export?format=csv")
    print("  JSON REST:             GET /api/v1/<source>                          (bearer token)")
    print(f"\nto pull every source through it, in another shell (from {Path.cwd()}):")
    if os.environ.get(TOKEN_ENV):
        print(f"  # {TOKEN_ENV} is already set in this shell: export the same value there")
    else:
        print(f"  export {TOKEN_ENV}=\"$(cat {token_path})\"")
    print(f"  export CS_HEALTH_SOURCES_CONFIG={config_path}")
    print(f"  cs-health --home {home} run", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


def _prepare_landing(home: Path, accounts: int, seed: int) -> Path:
    landing = settings.landing_dir(home)
    if _landing_is_empty(landing):
        from cs_assets.demo.generator import generate_demo_data

        print(f"landing area {landing} is empty: generating demo data ({accounts:,} accounts, seed {seed})")
        generate_demo_data(landing, accounts=accounts, seed=seed)
    return landing


def execute_snapshots(home: Path, dates: list[dt.date]):
    """One in-process run of the scoring job for a snapshot date or a contiguous range of them."""
    from cs_assets.definitions import HEALTH_SCORE_JOB, defs

    job = defs.resolve_job_def(HEALTH_SCORE_JOB)
    return job.execute_in_process(
        instance=_instance(home),
        run_config=run_config(home, max(dates)),
        tags=run_tags_for(dates),
        raise_on_error=False,
    )


def _report_failure(result, what: str) -> int:
    print(f"run {result.run_id} FAILED for {what}; the published scores were not updated.", file=sys.stderr)
    for line in failure_reasons(result.all_events):
        print(f"  {line}", file=sys.stderr)
    print("  (`cs-health status` shows the state of every source; README \"Checks\" says what to do)", file=sys.stderr)
    return 1


def cmd_run(args: argparse.Namespace) -> int:
    home = _set_home(args.home)
    started = time.perf_counter()
    landing = _prepare_landing(home, args.accounts, args.seed)
    as_of = settings.resolve_as_of(args.as_of, landing)
    result = execute_snapshots(home, [as_of])
    elapsed = time.perf_counter() - started
    if not result.success:
        return _report_failure(result, f"snapshot {as_of}")
    print(f"run {result.run_id} succeeded: snapshot {as_of} published to {settings.warehouse_path(home)} "
          f"in {elapsed:.1f} s")
    _print_band_summary(home, as_of)
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    home = _set_home(args.home)
    if args.days < 1:
        raise ValueError(f"--days must be at least 1, got {args.days}")
    started = time.perf_counter()
    landing = _prepare_landing(home, args.accounts, args.seed)
    end = settings.resolve_as_of(args.end, landing)
    dates = [end - dt.timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    result = execute_snapshots(home, dates)
    elapsed = time.perf_counter() - started
    if not result.success:
        return _report_failure(result, f"snapshots {dates[0]}..{dates[-1]}")
    print(f"run {result.run_id} succeeded: {len(dates)} snapshot(s) {dates[0]}..{dates[-1]} published to "
          f"{settings.warehouse_path(home)} in {elapsed:.1f} s")
    _print_band_summary(home, end)
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
                lines.append(f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} [{severity}]: {reason}")
    return lines


def _connect(home: Path):
    import duckdb

    path = settings.warehouse_path(home)
    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `cs-health run` first")
    return duckdb.connect(str(path), read_only=True)


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
    home = _set_home(args.home)
    con = _connect(home)
    account = args.account_id.strip()
    try:
        if args.snapshot:
            snapshot = settings.parse_date(args.snapshot, "--snapshot")
        else:
            snapshot = con.execute(
                "SELECT max(snapshot_date) FROM published.account_health WHERE account_id = ?", [account]
            ).fetchone()[0]
        if snapshot is None:
            print(f"account {account!r} has no published score in {settings.warehouse_path(home)}", file=sys.stderr)
            return 2
        head = con.execute(
            "SELECT health_score, co_score, cx_score, band, lifecycle_stage, size_tier, triage_priority, "
            "csm_owner, model_version FROM published.account_health WHERE account_id = ? AND snapshot_date = ?",
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
    finally:
        con.close()
    score, co, cx, band, stage, tier, triage, owner, version = head
    print(f"{account}  snapshot {snapshot}  model {version}")
    print(f"health {score} ({band})  CO {co}  CX {cx}  stage {stage}  tier {tier}  triage {triage}  owner {owner}")
    print(f"\n{'sub':<4}{'indicator':<30}{'value':>12}{'score':>8}{'weight':>8}{'points':>10}{'of max':>8}")
    for sub, ind, raw, missing, iscore, weight, pts, mx in parts:
        value = "no data" if missing else f"{raw:.4g}"
        shown = "excl." if iscore is None else f"{iscore:.0f}"
        print(f"{sub:<4}{ind:<30}{value:>12}{shown:>8}{weight:>8.1%}{pts:>10}{mx:>8.2f}")
    total = sum(p[6] for p in parts)
    print(f"{'':<4}{'total':<30}{'':>12}{'':>8}{'':>8}{total:>10}")
    if args.since:
        _print_change(home, account, settings.parse_date(args.since, "--since"), snapshot)
    if args.trace:
        _print_trace(home, snapshot)
    return 0


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
        print(f"model {change['model_before']} -> {change['model_after']}: indicator parts use model "
              f"{change['model_before']}; the rest is the model change")
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

    home = _set_home(args.home)
    con = _connect(home)
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


def cmd_status(args: argparse.Namespace) -> int:
    import dagster as dg

    from checks.dq_config import active_dq_config
    from cs_assets.definitions import HEALTH_SCORE_JOB, defs
    from cs_assets.indicators.compute import as_of_end
    from cs_assets.sources.schemas import SOURCES

    home = _set_home(args.home)
    landing = settings.landing_dir(home)
    as_of = settings.resolve_as_of(args.as_of, landing)
    end = as_of_end(as_of)
    instance = _instance(home)
    dq = active_dq_config()
    check_keys = list(defs.resolve_asset_graph().asset_check_keys)
    latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)

    print(f"state: {home}   as-of: {as_of}")
    print(f"\n{'source':<20}{'newest record':<28}{'age':>10}{'limit':>8}  checks")
    for name, spec in SOURCES.items():
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
            evaluation = record.event.dagster_event.event_specific_data if record and record.event and record.event.dagster_event else None
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

    runs = instance.get_runs(dg.RunsFilter(job_name=HEALTH_SCORE_JOB), limit=1)
    if runs:
        run = runs[0]
        print(f"\nlast run: {run.run_id} {run.status.value}")
        if run.status != dg.DagsterRunStatus.SUCCESS:
            events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event is not None]
            for line in failure_reasons(events):
                print(f"  {line}")
    else:
        print("\nlast run: none (run `cs-health run`)")

    path = settings.warehouse_path(home)
    if not path.exists():
        print("published: nothing yet")
        return 0
    con = _connect(home)
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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cs-health",
        description="Customer health scores on Dagster. State lives under $CS_HEALTH_HOME (default ./.cs_health).",
    )
    parser.add_argument("--home", help="state directory (overrides $CS_HEALTH_HOME)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize the whole graph through Dagster and print a band summary")
    run.add_argument("--as-of", help="snapshot date YYYY-MM-DD (default: $CS_HEALTH_AS_OF, else the demo data's date, else yesterday UTC)")
    run.add_argument("--accounts", type=int, default=2000, help="demo accounts to generate when the landing area is empty (default 2000)")
    run.add_argument("--seed", type=int, default=7, help="demo data seed (default 7)")
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser(
        "backfill", help="score and publish the last N snapshot dates in one run (re-running a date replaces it)"
    )
    backfill.add_argument("--days", type=int, required=True, help="number of daily snapshots, ending with --end")
    backfill.add_argument("--end", help="last snapshot date YYYY-MM-DD (default as for `run --as-of`)")
    backfill.add_argument("--accounts", type=int, default=2000, help="demo accounts to generate when the landing area is empty (default 2000)")
    backfill.add_argument("--seed", type=int, default=7, help="demo data seed (default 7)")
    backfill.set_defaults(func=cmd_backfill)

    demo = sub.add_parser("demo-data", help="write deterministic demo exports into the landing area")
    demo.add_argument("--accounts", type=int, default=2000, help="number of accounts (default 2000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--as-of", help="the demo data's 'today' (default 2026-10-31)")
    demo.add_argument("--force", action="store_true", help="overwrite a non-empty landing area")
    demo.set_defaults(func=cmd_demo_data)

    demo_api = sub.add_parser("demo-api", help="serve the demo data over HTTP on 127.0.0.1 (HubSpot-, Zendesk-, CSV- and JSON-style APIs)")
    demo_api.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    demo_api.add_argument("--accounts", type=int, default=2000, help="demo accounts to generate when the landing area is empty (default 2000)")
    demo_api.add_argument("--seed", type=int, default=7, help="demo data seed (default 7)")
    demo_api.set_defaults(func=cmd_demo_api)

    status = sub.add_parser("status", help="per source: newest record, age, limit, last check results; last run and publish")
    status.add_argument("--as-of", help="measure ages from the end of this day (default as for `run`)")
    status.set_defaults(func=cmd_status)

    explain = sub.add_parser("explain", help="print an account's score breakdown")
    explain.add_argument("account_id")
    explain.add_argument("--snapshot", help="snapshot date YYYY-MM-DD (default: the latest)")
    explain.add_argument("--since", help="also split the change since this date's snapshot into per-indicator parts")
    explain.add_argument("--trace", action="store_true", help="also list the source loads (run ids, data versions) that fed the snapshot")
    explain.set_defaults(func=cmd_explain)

    actions = sub.add_parser("actions", help="list open actions (what to do for which account, and why), P1 first")
    actions.add_argument("--all", action="store_true", help="also cleared and no-longer-scored actions")
    actions.add_argument("--owner", help="only this CSM's actions")
    actions.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    actions.set_defaults(func=cmd_actions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Dagster warns that some parameters we use (backfill_policy, data_version) are beta: that is
    # for this project's developers (pinned in uv.lock), and a CLI user can do nothing about it
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"cs-health: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
