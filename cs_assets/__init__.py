"""Customer health scores as a Dagster asset graph (the code location: `cs_assets.definitions`)."""

import warnings

# Dagster flags parameters this project uses (backfill_policy, data_version) as beta when the
# definitions are built: a notice for this project's developers (versions are pinned in uv.lock),
# not for someone reading `dagster dev`'s or a run's log.


def hide_beta_notices() -> None:
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")


hide_beta_notices()
