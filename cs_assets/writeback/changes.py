"""What the write-back sends: each account's CRM property values, only those that changed since
the last accepted batch, cut into batches, and what a CRM's answer says about a batch.

Plain functions over polars frames; the asset (`cs_assets.writeback.assets`) wires them to the
warehouse and the endpoint.
"""

import hashlib
import json
from dataclasses import dataclass

import polars as pl

from cs_assets.writeback.config import FIELDS, HUBSPOT_BATCH, Writeback

VALUES_SCHEMA = {"account_id": pl.String, "property": pl.String, "value": pl.String}


@dataclass(frozen=True)
class Batch:
    batch_id: str  # a hash of the destination and the body: the same batch has the same id
    accounts: int
    values: pl.DataFrame  # account_id, property, value: what the batch sets
    body: dict


def _as_text(field: str, decimals: int) -> pl.Expr:
    column = pl.col(field)
    kind = FIELDS[field]
    if kind == "number":
        # rounded as people (and SQL's round) do, half away from zero; a rounded -0.0 is 0.0,
        # so that the same score is the same text on every run
        rounded = column.cast(pl.Float64).round(decimals, mode="half_away_from_zero")
        rounded = pl.when(rounded == 0).then(pl.lit(0.0)).otherwise(rounded)
        # whole numbers as "64", not "64.0", when the file asks for no decimals
        text = (rounded.cast(pl.Int64) if decimals == 0 else rounded).cast(pl.String)
    elif kind == "integer":
        text = column.cast(pl.Int64).cast(pl.String)
    elif kind == "date":
        text = column.cast(pl.Date).dt.strftime("%Y-%m-%d")
    else:
        text = column.cast(pl.String)
    # an empty value clears the property in the CRM (HubSpot's convention)
    return text.fill_null("")


def crm_values(latest: pl.DataFrame, writeback: Writeback) -> pl.DataFrame:
    """One row per account and CRM property: the text the property should hold now."""
    if latest.is_empty():
        return pl.DataFrame(schema=VALUES_SCHEMA)
    wide = latest.select(
        pl.col("account_id").cast(pl.String),
        *[_as_text(field, writeback.decimals).alias(prop) for prop, field in writeback.properties.items()],
    )
    return (
        wide.unpivot(index="account_id", variable_name="property", value_name="value")
        .select(list(VALUES_SCHEMA))
        .sort("account_id", "property")
    )


def changed_values(values: pl.DataFrame, written: pl.DataFrame) -> pl.DataFrame:
    """The values the CRM does not hold yet, by what earlier accepted batches wrote to it."""
    return values.join(written.select(VALUES_SCHEMA.keys()), on=list(VALUES_SCHEMA), how="anti").sort(
        "account_id", "property"
    )


def _body(records: list[tuple[str, dict[str, str]]], writeback: Writeback) -> dict:
    """The JSON of one batch in the endpoint's format (dry runs write the HubSpot shape)."""
    endpoint = writeback.endpoint
    if endpoint is not None and endpoint.format != HUBSPOT_BATCH:
        return {"records": [{"id": account, "properties": props} for account, props in records]}
    id_property = {"idProperty": writeback.id_property} if writeback.id_property else {}
    return {"inputs": [{"id": account, **id_property, "properties": props} for account, props in records]}


def plan_batches(changed: pl.DataFrame, writeback: Writeback) -> list[Batch]:
    """The changed values cut into batches of at most `batch_size` accounts, in account order."""
    if changed.is_empty():
        return []
    numbered = changed.sort("account_id", "property").with_columns(
        batch=((pl.col("account_id").rank("dense") - 1) // writeback.batch_size).cast(pl.Int64)
    )
    # one pass from polars to the JSON's Python objects: a record per account, not per value
    per_account = numbered.group_by("batch", "account_id", maintain_order=True).agg("property", "value")
    records: dict[int, list[tuple[str, dict[str, str]]]] = {}
    for batch, account, properties, texts in per_account.iter_rows():
        records.setdefault(batch, []).append((account, dict(zip(properties, texts, strict=True))))
    parts = numbered.partition_by("batch", as_dict=True, maintain_order=True, include_key=False)
    batches = []
    for number, accounts in records.items():
        body = _body(accounts, writeback)
        digest = hashlib.sha256(
            json.dumps([writeback.destination, body], sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:16]
        batches.append(Batch(batch_id=digest, accounts=len(accounts), values=parts[(number,)], body=body))
    return batches


def batch_problems(format: str, status: int, payload: object) -> list[str]:  # noqa: A002 - the config key
    """Why a CRM's 2xx answer does not accept the whole batch ([] when it does).

    HubSpot answers 207 Multi-Status with `errors` (each a `category`, a `message` and the ids in
    `context.ids`) when some inputs failed; a generic endpoint may list `errors` the same way.
    """
    errors = payload.get("errors") if isinstance(payload, dict) else None
    problems = []
    if isinstance(errors, list):
        for error in errors[:20]:
            if not isinstance(error, dict):
                problems.append(str(error)[:200])
                continue
            context = error.get("context")
            ids = context.get("ids") if isinstance(context, dict) else None
            ids = ids if isinstance(ids, list) else ([error["id"]] if "id" in error else [])
            what = error.get("category") or error.get("status") or "error"
            message = str(error.get("message") or "")[:200]
            problems.append(f"{what}: {message} (ids: {', '.join(map(str, ids[:10])) or 'not given'})")
    if status == 207 and not problems:
        problems.append("HTTP 207 Multi-Status without the errors it reports")
    if format == HUBSPOT_BATCH:
        # HubSpot always answers a batch with JSON; anything else (a proxy's or a login page) is
        # no proof that the CRM applied it
        if not isinstance(payload, dict):
            problems.append(f"HTTP {status} without the batch's JSON answer (a proxy or login page?)")
        elif payload.get("status") != "COMPLETE":
            problems.append(f"batch status {payload.get('status')!r}, not COMPLETE")
    return problems
