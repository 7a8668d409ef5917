"""Scale benchmark: `cs-health run` at several sizes against one bare polars query over the same
files; prints figures, asserts nothing.

    uv run python bench/scale.py [--accounts 2000,100000] [--workdir DIR] [--backfill-days N]
                                 [--product demo|ledgerly] [--engine polars|duckdb|spark] [--keep]

For each size, in a fresh home: the demo data is generated (`cs-health demo-data`, not timed in
the figures), then each measured command runs in its own process, and its wall time and peak
resident memory are taken (`getrusage` of that process alone):

1. **bare query**: one lazy polars query per event source over the landing files: parse the
   event time, keep the 90 days before the as-of day, and per account count the rows, the
   distinct users (when the source has `user_id`) and the newest time. It is the core of what
   the indicator step computes, without Dagster, checks or scoring;
2. **`cs-health run`**, the whole graph up to publish and delivery;
3. a second `cs-health run` on the same data (what a re-run or a retry costs);
4. with `--backfill-days N`, `cs-health backfill --days N` on the same home.

Beside each run: the duration of its `account_indicators` step and its three slowest steps,
read from the run's step stats in the home's Dagster instance.

`--engine` sets `CS_HEALTH_INDICATOR_ENGINE` for the runs (where the indicator step aggregates).

The load average (1 min) is printed next to every figure: on a busy machine the figures are
not comparable.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs one command and reports its wall time and the peak RSS of its process (children included
# one by one: ru_maxrss of RUSAGE_CHILDREN is the largest of them).
MEASURE = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peak_mb": peak_kb / 1024, "code": done.returncode,
                  "out": done.stdout[-4000:], "err": done.stderr[-4000:]}))
"""

BARE_QUERY = """
import datetime as dt, json, sys
from pathlib import Path
import polars as pl
from cs_assets.deployment import load_deployment
from cs_assets.indicators.compiler import as_of_end

landing, as_of, config = Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), sys.argv[3] or None
contract = load_deployment(config).contract
end = as_of_end(as_of)
start = end - dt.timedelta(days=90)
rows = 0
for spec in contract.sources.values():
    if spec.is_accounts:
        continue
    path = landing / spec.path
    files = sorted(path.glob(f"*.{spec.file_format}")) if path.is_dir() else [path]
    if spec.file_format == "parquet":
        frame = pl.scan_parquet(files)
    elif spec.file_format == "csv":
        frame = pl.scan_csv(files, infer_schema=False)
    else:
        frame = pl.scan_ndjson(files, infer_schema_length=None)
    exported = {v: k for k, v in spec.renames.items()}
    at = pl.col(exported.get(spec.event_time, spec.event_time))
    if frame.collect_schema()[exported.get(spec.event_time, spec.event_time)] == pl.String:
        at = at.str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False)
    account = pl.col(exported.get("account_id", "account_id")).cast(pl.String).str.strip_chars()
    aggs = [pl.len().alias("rows"), pl.col("at").max().alias("newest")]
    if "user_id" in spec.columns:
        aggs.append(pl.col(exported.get("user_id", "user_id")).n_unique().alias("users"))
    per_account = (
        frame.with_columns(at=at, account_id=account)
        .filter(pl.col("at").is_between(start, end, closed="left"))
        .group_by("account_id")
        .agg(aggs)
        .collect()
    )
    rows += per_account.height
print(json.dumps({"account_rows": rows}))
"""


def _env(home: Path, config: str | None, engine: str = "polars") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CS_HEALTH_") and k != "DAGSTER_HOME"}
    env.update(CS_HEALTH_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DAGSTER_DISABLE_TELEMETRY="1")
    env.update(GX_ANALYTICS_ENABLED="false", PYTHONPATH=str(HERE))
    if config:
        env["CS_HEALTH_CONFIG"] = config
    env["CS_HEALTH_INDICATOR_ENGINE"] = engine
    return env


def _measure(cmd: list[str], env: dict[str, str]) -> dict:
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(f"measuring {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load"] = load
    if figures["code"] != 0:
        print(f"  ! {' '.join(cmd[2:])} exited {figures['code']}:\n{figures['err'][-2000:]}", file=sys.stderr)
    return figures


def _step_seconds(home: Path) -> dict[str, float]:
    """How long each step of the home's last run took (from its Dagster instance; {} if unreadable)."""
    snippet = (
        "import json, dagster as dg; i = dg.DagsterInstance.get(); "
        "r = i.get_runs(limit=1)[0]; "
        "print(json.dumps({s.step_key: (s.end_time or 0) - (s.start_time or 0) "
        "for s in i.get_run_step_stats(r.run_id)}))"
    )
    env = _env(home, None)
    done = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_run(cmd: list[str], env: dict[str, str], home: Path) -> dict:
    measured = _measure(cmd, env)
    measured["steps"] = _step_seconds(home)
    return measured


def bench(
    accounts: int, workdir: Path, product: str, backfill_days: int, config: str | None, engine: str
) -> list[tuple]:
    home = workdir / f"{product}_{accounts}_{engine}"
    shutil.rmtree(home, ignore_errors=True)
    env = _env(home, config, engine)
    cli = [sys.executable, "-m", "cs_assets.cli"]
    t = time.perf_counter()
    subprocess.run(
        [*cli, "demo-data", "--product", product, "--accounts", str(accounts)],
        env=env,
        check=True,
        cwd=HERE,
        capture_output=True,
    )
    generated = time.perf_counter() - t
    manifest = json.loads((home / "landing" / "_demo_manifest.json").read_text())
    as_of = manifest["as_of"]
    rows = []
    bare = _measure([sys.executable, "-c", BARE_QUERY, str(home / "landing"), as_of, config or ""], env)
    rows.append((accounts, "bare polars query", bare))
    rows.append((accounts, "cs-health run", _measure_run([*cli, "run"], env, home)))
    rows.append((accounts, "cs-health run (again, same data)", _measure_run([*cli, "run"], env, home)))
    if backfill_days:
        rows.append(
            (
                accounts,
                f"cs-health backfill --days {backfill_days}",
                _measure_run([*cli, "backfill", "--days", str(backfill_days)], env, home),
            )
        )
    print(f"  ({accounts:,} accounts generated in {generated:.0f} s, as of {as_of})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", default="2000,100000", help="comma-separated sizes (default 2000,100000)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the homes go (default: a temporary directory)"
    )
    parser.add_argument(
        "--product", choices=("demo", "ledgerly"), default="demo", help="which example product (default demo)"
    )
    parser.add_argument(
        "--backfill-days", type=int, default=0, help="also time a backfill of this many days (default: none)"
    )
    parser.add_argument(
        "--engine", choices=("polars", "duckdb", "spark"), default="polars", help="indicator engine (default polars)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the homes afterwards")
    args = parser.parse_args()
    config = str(HERE / "examples" / "ledgerly" / "config") if args.product == "ledgerly" else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cs_health_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"engine: {args.engine}; product: {args.product}")
    print(f"{'accounts':>9}  {'what':<36} {'wall s':>8} {'peak MB':>8} {'x bare':>7} {'load':>5}  notes", flush=True)
    try:
        for accounts in (int(a) for a in args.accounts.split(",")):
            rows = bench(accounts, workdir, args.product, args.backfill_days, config, args.engine)
            bare = rows[0][2]["wall"]
            for size, what, f in rows:
                ratio = f"{f['wall'] / bare:.1f}" if what != "bare polars query" else ""
                notes = "" if f["code"] == 0 else f"exit {f['code']} "
                steps = f.get("steps") or {}
                indicator = next((v for k, v in steps.items() if k.startswith("account_indicators")), None)
                if indicator is not None:
                    notes += f"indicator step {indicator:.1f} s ({indicator / bare:.1f}x bare); "
                if steps:
                    slowest = sorted(steps.items(), key=lambda kv: -kv[1])[:3]
                    notes += "slowest: " + ", ".join(f"{k.split('[')[0]} {v:.1f} s" for k, v in slowest)
                print(
                    f"{size:>9,}  {what:<36} {f['wall']:>8.1f} {f['peak_mb']:>8.0f} {ratio:>7} {f['load']:>5.2f}  {notes}",
                    flush=True,
                )
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
