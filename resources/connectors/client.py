"""HTTP requests for one source: auth from the environment, timeouts, bounded retries, redaction.

- Every request has a connect and read timeout, and the whole body must arrive within
  `timeout_seconds` (a server that trickles bytes counts as a timeout) and within
  `max_response_mb`.
- 429 and 5xx responses, timeouts and connection errors are retried with exponential backoff
  (`backoff_seconds`, doubled each time, capped by `max_backoff_seconds`); a `Retry-After`
  header (seconds or an HTTP date) is honoured. All attempts and waits together stay within
  `max_total_seconds`; then the error names the source, the method and URL *path* (never the
  query or the credentials), the status and the attempts.
- Other 4xx responses are not retried. GET redirects are followed (http(s) only, at most 5);
  credentials go only to the configured scheme, host and port, never to a redirect target.
- The secret is read from the environment variable named in config when the request is made;
  it is never put in config, metadata or logs, and any error text is scrubbed of it.
- Follow-up links from a response (next pages) must stay on the configured scheme, host and
  port, so a response can never send the credentials elsewhere.
"""

import base64
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from cs_assets.sources.normalise import SourceDataError
from cs_assets.sources.source_config import Auth, Retry
from resources.retry_after import retry_after_seconds

USER_AGENT = "cs-health-connector/1"
MAX_REDIRECTS = 5
REDACTED = "***"


class ConnectorError(SourceDataError):
    """An HTTP request failed for good; the message names the source (or the write-back) and never a secret."""

    attempts = 0  # how many requests were made before giving up


class Endpoint(Protocol):
    """What the client needs of a configured API: an HTTP source, or the CRM write-back."""

    @property
    def label(self) -> str: ...  # how errors name it: "source crm_accounts", "CRM write-back"
    @property
    def base_url(self) -> str: ...
    @property
    def auth(self) -> Auth: ...
    @property
    def retry(self) -> Retry: ...
    @property
    def timeout_seconds(self) -> float: ...
    @property
    def max_response_bytes(self) -> int: ...


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    attempts: int


def describe(method: str, url: str) -> str:
    """`GET /path`: what an error or log line may show of a request (no host query or credentials)."""
    return f"{method} {urlsplit(url).path or '/'}"


def _status_text(status: int, reason: str | None) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    # the server's reason phrase is untrusted text: prefer the standard one
    return f"HTTP {status} {phrase or (reason or '')[:60]}".strip()


class HttpClient:
    def __init__(
        self,
        config: Endpoint,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ):
        self.config = config
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.environ = os.environ if environ is None else environ
        self._secrets: list[str] = []
        base = urlsplit(config.base_url)
        self._origin = (base.scheme, base.hostname, base.port)

    # ------------------------------------------------------------------ secrets

    def _env(self, name: str | None, what: str) -> str:
        if name is None:
            # the auth model of sources.yaml requires the variable of each secret its type uses
            raise ConnectorError(f"{self.config.label}: auth: no environment variable is named for the {what}")
        value = self.environ.get(name, "")
        if not value:
            raise ConnectorError(f"{self.config.label}: auth: environment variable {name} ({what}) is not set or empty")
        return value

    def _auth_headers(self) -> dict[str, str]:
        auth = self.config.auth
        if auth.type == "bearer":
            token = self._env(auth.token_env, "bearer token")
            self._remember(token)
            return {"Authorization": f"Bearer {token}"}
        if auth.type == "basic":
            user = auth.username if auth.username is not None else self._env(auth.username_env, "user name")
            password = self._env(auth.password_env, "password or API token")
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._remember(password, encoded)
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def _remember(self, *secrets: str) -> None:
        for secret in secrets:
            if secret and secret not in self._secrets:
                self._secrets.append(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def fail(self, message: str, attempts: int = 0) -> ConnectorError:
        error = ConnectorError(self.redact(f"{self.config.label}: {message}"))
        error.attempts = attempts
        return error

    # ------------------------------------------------------------------ URLs

    def check_link(self, url: str, where: str) -> str:
        """A follow-up URL from a response: http(s), on the configured scheme, host and port."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise self.fail(f"{where}: next-page link has scheme {parts.scheme or 'none'!r}; only http(s) is followed")
        if (parts.scheme, parts.hostname, parts.port) != self._origin or parts.username or parts.password:
            raise self.fail(
                f"{where}: next-page link points to another host ({parts.hostname}); "
                "it is not followed, so the credentials never leave the configured API"
            )
        return url

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        json_body: object | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Response:
        what = describe(method, url)
        retry = self.config.retry
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            outcome, wait_hint = self._attempt(method, url, params, json_body, headers, ok_statuses)
            if isinstance(outcome, Response):
                return Response(outcome.status, outcome.headers, outcome.body, outcome.url, attempt)
            problem, retryable = outcome
            elapsed = self.clock() - started
            if not retryable:
                raise self.fail(f"{what}: {problem}", attempt)
            if attempt >= retry.max_attempts:
                raise self.fail(f"{what}: {problem}; gave up after {attempt} attempt(s) in {elapsed:.1f} s", attempt)
            backoff = min(retry.backoff_seconds * 2 ** (attempt - 1), retry.max_backoff_seconds)
            wait = max(backoff, wait_hint) if wait_hint is not None else backoff
            if elapsed + wait > retry.max_total_seconds:
                asked = (
                    f"the server asked to retry after {wait_hint:g} s, "
                    if wait_hint is not None and wait_hint >= backoff
                    else ""
                )
                raise self.fail(
                    f"{what}: {problem}; gave up after {attempt} attempt(s) in {elapsed:.1f} s: {asked}"
                    f"waiting {wait:g} s more would exceed the retry budget of {retry.max_total_seconds:g} s",
                    attempt,
                )
            self.sleep(wait)

    def _attempt(self, method, url, params, json_body, headers, ok_statuses):
        """A Response, or ((problem, retryable), Retry-After seconds or None).

        GET redirects are followed (up to MAX_REDIRECTS, http(s) only); the credentials are only
        ever sent to the configured scheme, host and port, never to where a redirect points.
        """
        config = self.config
        deadline = time.monotonic() + config.timeout_seconds
        for _ in range(MAX_REDIRECTS + 1):
            all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json, text/csv;q=0.9, */*;q=0.1"}
            all_headers.update(headers or {})
            parts = urlsplit(url)
            if (parts.scheme, parts.hostname, parts.port) == self._origin:
                all_headers.update(self._auth_headers())
            try:
                with self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=all_headers,
                    timeout=(min(config.timeout_seconds, 30.0), config.timeout_seconds),
                    stream=True,
                    allow_redirects=False,
                ) as resp:
                    status = resp.status_code
                    if status in ok_statuses:
                        body = self._read_body(resp, deadline)
                        if isinstance(body, tuple):
                            return body, None
                        return Response(status, resp.headers, body, url, 0), None
                    text = _status_text(status, resp.reason)
                    if status == 429 or status >= 500:
                        return (text, True), retry_after_seconds(resp.headers.get("Retry-After"))
                    if status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        if method != "GET":
                            return (
                                f"{text}: a {method} request is not redirected (configure the final URL)",
                                False,
                            ), None
                        target = urljoin(resp.url or url, resp.headers["Location"])
                        scheme = urlsplit(target).scheme
                        if scheme not in ("http", "https"):
                            return (
                                f"{text}: redirect to a {scheme or 'relative'!r} URL is not followed; only http(s)",
                                False,
                            ), None
                        url, params = target, None
                        continue
                    if status in (401, 403):
                        return (f"{text}{self._credential_hint()}", False), None
                    return (text, False), None
            except requests.Timeout:
                return (f"no response within the timeout of {config.timeout_seconds:g} s", True), None
            except requests.ConnectionError as exc:
                cause = "connection refused" if "refused" in str(exc).lower() else "connection failed"
                return (f"{cause} ({urlsplit(url).netloc}; {type(exc).__name__})", True), None
            except requests.RequestException as exc:
                return (f"request failed ({type(exc).__name__})", False), None
        return (f"more than {MAX_REDIRECTS} redirects", False), None

    def _read_body(self, resp: requests.Response, deadline: float):
        """The whole body, or (problem, retryable): too large, too slow overall, or cut off."""
        limit = self.config.max_response_bytes
        chunks, size = [], 0
        raw = resp.raw
        # read1 returns what has arrived (a trickling server cannot hold a read open past the
        # deadline); iter_content is the fallback for sessions whose adapter has no read1
        if hasattr(raw, "read1"):
            pieces = iter(lambda: raw.read1(65536, decode_content=True), b"")
        else:
            pieces = resp.iter_content(chunk_size=8192)
        try:
            for chunk in pieces:
                size += len(chunk)
                if size > limit:
                    return (f"response larger than the limit of {limit / 1048576:g} MB (max_response_mb)", False)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    return (
                        f"the response body did not arrive within the timeout of {self.config.timeout_seconds:g} s",
                        True,
                    )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # a read timeout or a connection dropped mid-body
            return (f"the response body was cut off ({type(exc).__name__})", True)
        return b"".join(chunks)

    def _credential_hint(self) -> str:
        auth = self.config.auth
        if auth.type == "bearer":
            return f": check the token in ${auth.token_env}"
        if auth.type == "basic":
            return f": check the credentials (password in ${auth.password_env})"
        return ": the API needs credentials (configure `auth`)"
