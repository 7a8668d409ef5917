"""Example products: deterministic data generators, each with the config directory that describes it.

Nothing outside the demo commands of the CLI imports these: the platform reads config files only.
"""

from dataclasses import dataclass
from pathlib import Path

from cs_assets.deployment import DEFAULT_CONFIG_DIR
from cs_assets.settings import REPO_ROOT


@dataclass(frozen=True)
class Product:
    name: str
    config_dir: Path  # the deployment that describes this product's exports
    description: str

    def generate(self, landing: Path, accounts: int, seed: int, as_of=None):
        if self.name == "demo":
            from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data

            return generate_demo_data(landing, accounts=accounts, seed=seed, as_of=as_of or DEMO_AS_OF)
        from cs_assets.demo.ledgerly import generate_ledgerly_data

        kwargs = {"as_of": as_of} if as_of else {}
        return generate_ledgerly_data(landing, accounts=accounts, seed=seed, **kwargs)


PRODUCTS = {
    "demo": Product(
        "demo", DEFAULT_CONFIG_DIR, "a data-integration SaaS: five sources (CRM, usage, tickets, surveys, engagement)"
    ),
    "ledgerly": Product(
        "ledgerly",
        REPO_ROOT / "examples" / "ledgerly" / "config",
        "an invoicing app for small businesses: two sources (subscriptions, app events)",
    ),
}


def product_for(config_dir: Path) -> Product | None:
    """The example product a config directory describes, if it is one of the shipped examples."""
    resolved = Path(config_dir).resolve()
    return next((p for p in PRODUCTS.values() if p.config_dir.resolve() == resolved), None)
