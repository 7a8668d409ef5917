"""Delivery of actions and run failures to a Slack-compatible webhook, or to a dry-run file.

The webhook URL is a secret (a Slack incoming-webhook URL carries its token in the path): it is
read from the environment when a message is sent, never stored in resource config, and never
written to logs, metadata or error messages; errors name the environment variable instead.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests

from resources.retry_after import retry_after_seconds

WEBHOOK_ENV = "CS_HEALTH_WEBHOOK_URL"
WEBHOOK, FILE = "webhook", "file"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class NotifierError(RuntimeError):
    pass


@dataclass(frozen=True)
class Delivery:
    channel: str
    attempts: int
    http_status: int | None


def slack_message(text: str, fields: dict[str, str] | None = None) -> dict:
    """Slack incoming-webhook JSON: `text` for notifications, a section block for the detail."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields.items()]}
        )
    return {"text": text, "blocks": blocks}


class NotifierResource(dg.ConfigurableResource):
    """Posts JSON messages with retries and an Idempotency-Key; without a URL, appends to a file.

    `webhook_url_env` names the environment variable holding the URL (default
    CS_HEALTH_WEBHOOK_URL). Unset or empty: dry run, each message is appended as a JSON line to
    `outbox_dir/messages.jsonl`.
    """

    outbox_dir: str
    webhook_url_env: str = WEBHOOK_ENV
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_seconds: float = 1.0  # doubled after each failed attempt
    max_wait_seconds: float = 30.0  # cap on one wait, Retry-After included

    @property
    def channel(self) -> str:
        return WEBHOOK if self._url() else FILE

    def _url(self) -> str | None:
        url = dg.EnvVar(self.webhook_url_env).get_value()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifierError(
                f"{self.webhook_url_env} must be an http(s) URL with a host; got a value with scheme {parts.scheme!r}"
            )
        return url

    def outbox_path(self) -> Path:
        return Path(self.outbox_dir) / "messages.jsonl"

    def send(self, key: str, message: dict) -> Delivery:
        """Deliver one message once; `key` is its idempotency key (the receiver drops repeats)."""
        url = self._url()
        if url is None:
            path = self.outbox_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"idempotency_key": key, "message": message}, sort_keys=True) + "\n")
            return Delivery(FILE, 1, None)
        return self._post(url, key, message)

    def _post(self, url: str, key: str, message: dict) -> Delivery:
        wait = self.backoff_seconds
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = requests.post(
                    url, json=message, headers={"Idempotency-Key": key}, timeout=self.timeout_seconds
                )
            except requests.RequestException as exc:
                # the exception text contains the URL: keep only its type
                last, retry_after = type(exc).__name__, None
            else:
                if response.status_code < 300:
                    return Delivery(WEBHOOK, attempt, response.status_code)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    raise NotifierError(f"webhook ({self.webhook_url_env}) refused message {key}: {last}; not retried")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                time.sleep(min(retry_after if retry_after is not None else wait, self.max_wait_seconds))
                wait *= 2
        raise NotifierError(
            f"webhook ({self.webhook_url_env}) failed for message {key} after {self.max_attempts} attempts; last: {last}"
        )
