"""What goes back to the CRM (`crm_writeback.yaml`): which published fields, into which account
properties, through which endpoint.

The file is reviewed like the other config files and validated when it is loaded, with messages
that name the file and the key. Nothing secret is ever in it: the endpoint's token is read from
the environment variable `auth` names, when a batch is sent.

- `properties` maps a CRM property name to a published field (`FIELDS` lists them: the score,
  its band and stage, its trend, its top drags, ...).
- `endpoint` is where the batches go. `format: hubspot_batch` speaks HubSpot's CRM v3
  "batch update" (`POST /crm/v3/objects/<object>/batch/update`, `{"inputs": [{"id",
  "idProperty", "properties"}]}`, at most 100 inputs); `format: generic_json` posts
  `{"records": [{"id", "properties"}]}` to any URL. Without `endpoint` the write-back is a dry
  run: each batch is appended, as it would be sent, to `$CS_HEALTH_HOME/outbox/crm_writeback.jsonl`.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem, load_config
from cs_assets.sources.source_config import OBJECT_NAME, ApiUrl, Auth, AuthDecl, Retry, RetryDecl, UrlPath

HUBSPOT_BATCH, GENERIC_JSON = "hubspot_batch", "generic_json"
HUBSPOT_MAX_BATCH = 100  # HubSpot's limit on inputs per batch request
MAX_BATCH = 1000

# the published field -> its type, for how a value is written: numbers rounded to `decimals`,
# integers as they are, dates as ISO text, a missing value as "" (which clears the property)
FIELDS: dict[str, str] = {
    "health_score": "number",
    "co_score": "number",
    "cx_score": "number",
    "band": "text",
    "lifecycle_stage": "text",
    "triage_priority": "text",
    "size_tier": "text",
    "segment_model": "text",
    "health_stage": "text",  # actions.yaml `stages`; "" when none are configured
    "stage_since": "date",
    "change_7d": "number",
    "change_30d": "number",
    "change_4w": "number",
    "change_since_previous": "number",
    "band_transition": "text",
    "drag_1_indicator": "text",
    "drag_1_points_lost": "number",
    "drag_2_indicator": "text",
    "drag_2_points_lost": "number",
    "drag_3_indicator": "text",
    "drag_3_points_lost": "number",
    "days_to_renewal": "integer",
    "snapshot_date": "date",
    "model_version": "text",
}
# a CRM property's internal name (HubSpot: lower case, digits, underscores)
PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")


class WritebackConfigError(ConfigFileError):
    """crm_writeback.yaml is invalid; names the file, the key and the problem."""


def _matches(pattern: re.Pattern, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ConfigProblem("", f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


PropertyName = Annotated[str, _matches(PROPERTY_NAME, "a CRM property name (letters, digits, underscores)")]
ObjectName = Annotated[str, _matches(OBJECT_NAME, "a CRM object type name")]


class EndpointDecl(ConfigModel):
    format: Literal["hubspot_batch", "generic_json"]
    base_url: ApiUrl
    path: UrlPath | None = None  # hubspot_batch: /crm/v3/objects/<object>/batch/update
    auth: AuthDecl | None = None
    timeout_seconds: Annotated[float, Field(ge=0.01, le=3600)] = 30.0
    retry: RetryDecl | None = None
    max_response_mb: Annotated[float, Field(ge=0.001, le=1024)] = 10.0

    @model_validator(mode="after")
    def _generic_needs_a_path(self) -> "EndpointDecl":
        if self.format == GENERIC_JSON and self.path is None:
            raise ConfigProblem("path", "generic_json needs the `path` the records are posted to")
        return self


class WritebackFile(ConfigModel):
    object: ObjectName = "companies"  # hubspot_batch: the CRM object type the accounts are
    # the CRM property holding our account_id (HubSpot `idProperty`, a unique-value property);
    # leave it out when account_id is the CRM record's own id
    id_property: PropertyName | None = None
    properties: dict[str, str]
    decimals: Annotated[int, Field(ge=0, le=6)] = 1
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = HUBSPOT_MAX_BATCH
    # all batches of one run together; what is left goes out with the next run
    max_run_seconds: Annotated[float, Field(ge=1, le=86400)] = 900.0
    endpoint: EndpointDecl | None = None

    @field_validator("properties")
    @classmethod
    def _known_fields(cls, properties: dict[str, str]) -> dict[str, str]:
        if not properties:
            raise ConfigProblem("", "name at least one CRM property and the published field it gets")
        for prop, field in properties.items():
            if not PROPERTY_NAME.match(prop):
                raise ConfigProblem(prop, f"{prop!r} is not a CRM property name (letters, digits, underscores)")
            if field not in FIELDS:
                raise ConfigProblem(prop, f"unknown published field {field!r} (allowed: {', '.join(FIELDS)})")
        return properties

    @model_validator(mode="after")
    def _batch_within_hubspot_limit(self) -> "WritebackFile":
        endpoint = self.endpoint
        if endpoint is not None and endpoint.format == HUBSPOT_BATCH and self.batch_size > HUBSPOT_MAX_BATCH:
            raise ConfigProblem(
                "batch_size",
                f"must be at most {HUBSPOT_MAX_BATCH} for hubspot_batch (HubSpot's limit), got {self.batch_size}",
            )
        if self.id_property is not None and self.id_property in self.properties:
            raise ConfigProblem(
                "id_property", f"{self.id_property!r} identifies the account: it cannot also be written"
            )
        return self


@dataclass(frozen=True)
class Endpoint:
    """Where the batches go; what the HTTP client needs of it (`resources.connectors.client`)."""

    format: str
    base_url: str
    path: str
    auth: Auth
    timeout_seconds: float
    retry: Retry
    max_response_bytes: int

    @property
    def label(self) -> str:
        return "CRM write-back"

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.path

    @property
    def destination(self) -> str:
        # what the bookkeeping is kept per: another endpoint gets every value once
        return f"{self.format} {self.url}"


@dataclass(frozen=True)
class Writeback:
    origin: str
    object: str
    id_property: str | None
    properties: dict[str, str]  # CRM property -> published field
    decimals: int
    batch_size: int
    max_run_seconds: float
    endpoint: Endpoint | None  # None: dry run into the outbox file

    @property
    def destination(self) -> str:
        return self.endpoint.destination if self.endpoint is not None else "file"


def parse_writeback(parsed: WritebackFile, origin: str) -> Writeback:
    endpoint = None
    if parsed.endpoint is not None:
        decl = parsed.endpoint
        path = decl.path or f"/crm/v3/objects/{parsed.object}/batch/update"
        endpoint = Endpoint(
            format=decl.format,
            base_url=decl.base_url.rstrip("/"),
            path=path,
            auth=decl.auth.build() if decl.auth is not None else Auth(),
            timeout_seconds=decl.timeout_seconds,
            retry=decl.retry.build() if decl.retry is not None else Retry(),
            max_response_bytes=int(decl.max_response_mb * 1024 * 1024),
        )
    return Writeback(
        origin=origin,
        object=parsed.object,
        id_property=parsed.id_property,
        properties=dict(parsed.properties),
        decimals=parsed.decimals,
        batch_size=parsed.batch_size,
        max_run_seconds=parsed.max_run_seconds,
        endpoint=endpoint,
    )


def load_writeback(path: str | Path) -> Writeback:
    parsed = load_config(path, WritebackFile, WritebackConfigError, "CRM write-back file")
    return parse_writeback(parsed, str(path))


def deployment_writeback(path: Path, named_explicitly: bool) -> Writeback | None:
    """The deployment's write-back, or None when it has no `crm_writeback.yaml`; a file named
    explicitly ($CS_HEALTH_WRITEBACK) must exist."""
    if not Path(path).is_file() and not named_explicitly:
        return None
    return load_writeback(path)
