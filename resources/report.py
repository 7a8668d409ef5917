"""Where the HTML health reports are written, and which deployment they are of."""

from pathlib import Path

import dagster as dg


class HealthReportResource(dg.ConfigurableResource):
    """`directory` gets one `health_report_<snapshot>.html` per snapshot; `deployment` is shown on them."""

    directory: str
    deployment: str = ""

    def path(self) -> Path:
        return Path(self.directory)
