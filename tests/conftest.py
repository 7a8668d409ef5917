"""Test-session setup that must happen before the project is imported."""

import os
import tempfile

from cs_assets import settings

# The snapshot partitions are read from $CS_HEALTH_HOME's landing data when the definitions are
# imported: point it at an empty home, so a developer's own home or shell cannot decide which
# days the tests may score (every test passes its own home to what it runs).
os.environ[settings.HOME_ENV] = tempfile.mkdtemp(prefix="cs-health-tests-home-")
os.environ.pop(settings.AS_OF_ENV, None)
