"""Where the Great Expectations checks remember which rows already passed which rule."""

from pathlib import Path

import dagster as dg

from checks.gx_incremental import ValidationRecord


class GxRecordResource(dg.ConfigurableResource):
    """The validity checks' record of passes (`checks.gx_incremental`); "" validates every row every time.

    Deleting the directory is always safe: the next check step validates everything again.
    """

    directory: str = ""

    def record(self) -> ValidationRecord | None:
        return ValidationRecord(Path(self.directory)) if self.directory else None
