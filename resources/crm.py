"""The CRM write-back's config and transport: batches posted through the sources' HTTP client
(timeouts, retries with Retry-After, a bounded budget, redaction), or appended to a dry-run file.

The endpoint's token is read from the environment variable `auth` names, when a batch is sent;
it is never in config, metadata, logs or error messages.
"""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from cs_assets.writeback.changes import Batch, batch_problems
from cs_assets.writeback.config import Writeback, load_writeback
from cs_assets.writeback.store import ACCEPTED, REJECTED, UNDELIVERED
from resources.connectors.client import ConnectorError, HttpClient

DRY_RUN_FILE = "crm_writeback.jsonl"


@dataclass(frozen=True)
class Sent:
    status: str  # accepted | rejected (the CRM refused part of it) | undelivered
    attempts: int
    http_status: int | None
    detail: str | None


class FileSender:
    """Dry run: each batch appended, as it would be posted, to the outbox file."""

    def __init__(self, writeback: Writeback, path: Path):
        self.writeback, self.path = writeback, path

    @property
    def where(self) -> str:
        return str(self.path)

    def send(self, batch: Batch) -> Sent:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"batch_id": batch.batch_id, "object": self.writeback.object, "body": batch.body}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        return Sent(ACCEPTED, 1, None, None)


class HttpSender:
    """A batch per POST; 429, 5xx and timeouts are retried by the client, within its budget."""

    def __init__(self, writeback: Writeback, client: HttpClient):
        assert writeback.endpoint is not None
        self.writeback, self.endpoint, self.client = writeback, writeback.endpoint, client

    @property
    def where(self) -> str:
        return f"{self.endpoint.format} {self.endpoint.path}"

    def send(self, batch: Batch) -> Sent:
        try:
            response = self.client.request(
                "POST",
                self.endpoint.url,
                json_body=batch.body,
                # a generic endpoint may drop a batch it has seen (a crash re-sends at most one)
                headers={"Content-Type": "application/json", "Idempotency-Key": batch.batch_id},
                ok_statuses=frozenset({200, 201, 202, 204, 207}),
            )
        except ConnectorError as exc:
            return Sent(UNDELIVERED, exc.attempts, None, str(exc))
        try:
            payload = json.loads(response.body) if response.body.strip() else None
        except ValueError:
            payload = None
        problems = batch_problems(self.endpoint.format, response.status, payload)
        if problems:
            detail = self.client.redact(f"{self.endpoint.label}: batch {batch.batch_id}: " + "; ".join(problems))
            return Sent(REJECTED, response.attempts, response.status, detail)
        return Sent(ACCEPTED, response.attempts, response.status, None)


class CrmWritebackResource(dg.ConfigurableResource):
    """`crm_writeback.yaml` of the deployment (or $CS_HEALTH_WRITEBACK), and where a dry run writes."""

    path: str
    outbox_dir: str

    def load(self) -> Writeback:
        return load_writeback(Path(self.path))

    def dry_run_path(self) -> Path:
        return Path(self.outbox_dir) / DRY_RUN_FILE

    def sender(
        self,
        writeback: Writeback,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> FileSender | HttpSender:
        if writeback.endpoint is None:
            return FileSender(writeback, self.dry_run_path())
        return HttpSender(writeback, HttpClient(writeback.endpoint, sleep=sleep, clock=clock, environ=environ))
