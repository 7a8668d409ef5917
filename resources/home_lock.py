"""One writer at a time per home: a lock file beside the warehouse, and DuckDB opened with a
bounded wait instead of a crash when another process holds the file.

- `home_lock` (an exclusive `flock` on `<warehouse>.writer.lock`) is held by every command that
  writes (`cs-health run`, `backfill`, `validate`, `calibrate`) for the whole command, and by
  every step that writes the warehouse (also under `dagster dev`) while it writes. A second
  writer is told who holds it (pid, since when, which command) and waits at most the time it
  was given. The lock is re-entrant within a process: the steps of an in-process run go on under
  the command's lock.
- `open_duckdb` retries a connection the file lock refuses (a writer elsewhere, or readers when
  this one writes), with backoff, up to a bound, and says so once; past the bound it raises an
  error that names the process holding the file.

The operating system releases a `flock` when its process dies (even after `kill -9`), so a
crash never leaves the home locked; the pid in the file is information only.
"""

import datetime as dt
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LOCK_SUFFIX = ".writer.lock"
HOLDER = re.compile(r"\(PID (\d+)\)")
# DuckDB's words for a file another process holds; anything else (a missing folder, a full disk,
# a home path that happens to contain "lock") is not worth waiting for
LOCK_CONFLICT = re.compile(r"Could not set lock on file .*Conflicting lock is held", re.DOTALL)

_held: dict[str, int] = {}  # lock path -> depth, for this process
_guard = threading.Lock()


class HomeBusyError(RuntimeError):
    """Another process writes this home; the message says who and since when."""


def lock_path(warehouse: str | Path) -> Path:
    return Path(f"{warehouse}{LOCK_SUFFIX}")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid', '?')}, since {info.get('since', '?')}, {info.get('what', 'a run')}"


@contextmanager
def home_lock(
    warehouse: str | Path, what: str, wait_seconds: float = 0.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """Exclusive writer lock of the home whose warehouse is `warehouse`; `what` says who holds it."""
    path = lock_path(warehouse)
    key = str(path.resolve())
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the body of the context
    try:
        deadline = time.monotonic() + wait_seconds
        delay = 0.1
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HomeBusyError(
                        f"another run is in progress on {path.parent} ({_holder(path)}); "
                        + (f"waited {wait_seconds:g} s. " if wait_seconds else "")
                        + "wait for it to finish, or pass --wait SECONDS"
                    ) from None
                sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
                delay = min(delay * 2, 2.0)
        handle.seek(0)
        handle.truncate()
        since = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        handle.write(json.dumps({"pid": os.getpid(), "since": since, "what": what}))
        handle.flush()
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def open_duckdb(
    database: str,
    read_only: bool,
    wait_seconds: float,
    on_wait: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection, waiting (with backoff, at most `wait_seconds`) while another process
    holds the file; `on_wait` is told once why it waits."""
    deadline = time.monotonic() + wait_seconds
    delay, told = 0.05, False
    while True:
        try:
            return duckdb.connect(database, read_only=read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            if not LOCK_CONFLICT.search(text):
                raise
            found = HOLDER.search(text)
            who = f"process {found.group(1)}" if found else "another process"
            if time.monotonic() >= deadline:
                mode = "read" if read_only else "write"
                raise HomeBusyError(
                    f"cannot {mode} the warehouse {database}: {who} holds it (waited {wait_seconds:g} s); "
                    "try again when it is done"
                ) from None
            if on_wait is not None and not told:
                on_wait(f"waiting for the warehouse {database}: {who} holds it (at most {wait_seconds:g} s)")
                told = True
            sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)
