"""Sending the planned batches, one at a time, each recorded as it is answered.

- A batch the CRM accepted whole is recorded with its values: they are never sent again.
- A batch it refused in part (HubSpot 207 with `errors`) is logged and none of its values is
  recorded, so the next run sends that batch again; the following batches still go out.
- A batch that could not be delivered (its retries exhausted, or 401/403/other 4xx) stops the
  run's write-back: the endpoint is the problem, not the rows, and the rest waits for the next run.
- All batches of a run together stay within `max_run_seconds`; what is left goes next time.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cs_assets.writeback.changes import Batch
from cs_assets.writeback.store import ACCEPTED, REJECTED


class Answer(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def http_status(self) -> int | None: ...
    @property
    def detail(self) -> str | None: ...


class Sender(Protocol):
    @property
    def where(self) -> str: ...
    def send(self, batch: Batch) -> Answer: ...


@dataclass
class Delivered:
    accepted: list[Batch] = field(default_factory=list)
    rejected: list[tuple[Batch, Answer]] = field(default_factory=list)
    undelivered: tuple[Batch, Answer] | None = None
    left: list[Batch] = field(default_factory=list)  # not tried: after an undelivered batch, or out of time
    out_of_time: bool = False

    @property
    def problems(self) -> list[str]:
        found = [answer.detail or f"batch {batch.batch_id} rejected" for batch, answer in self.rejected]
        if self.undelivered is not None:
            batch, answer = self.undelivered
            found.append(answer.detail or f"batch {batch.batch_id} not delivered")
        return found


def send_batches(
    batches: list[Batch],
    sender: Sender,
    record: Callable[[Batch, Answer], None],
    max_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> Delivered:
    """Send `batches` in order; `record` is called with each answer before the next batch goes."""
    delivered = Delivered()
    started = clock()
    for i, batch in enumerate(batches):
        if clock() - started > max_seconds:
            delivered.left, delivered.out_of_time = batches[i:], True
            break
        answer = sender.send(batch)
        record(batch, answer)
        if answer.status == ACCEPTED:
            delivered.accepted.append(batch)
        elif answer.status == REJECTED:
            delivered.rejected.append((batch, answer))
        else:
            delivered.undelivered, delivered.left = (batch, answer), batches[i + 1 :]
            break
    return delivered
