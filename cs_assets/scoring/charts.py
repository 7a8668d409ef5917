"""Small PNG charts embedded in asset metadata as markdown (the UI renders data: images)."""

import base64
import io

import polars as pl


def score_histogram(scores: pl.Series, bands: list[tuple[str, float]], title: str):
    """Accounts per 5-point bucket of the score, with the band cut points (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=90)
    ax.hist(scores.cast(pl.Float64).to_numpy(), bins=list(range(0, 105, 5)), color="#4c72b0", edgecolor="white")
    for name, cut in bands[1:]:
        ax.axvline(cut, color="#c44e52", linestyle="--", linewidth=1, zorder=3)
        ax.text(
            cut + 0.5,
            ax.get_ylim()[1] * 0.92,
            name,
            fontsize=8,
            color="#c44e52",
            zorder=4,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    ax.set_xlim(0, 100)
    ax.set_xlabel("health score")
    ax.set_ylabel("accounts")
    ax.set_title(title, fontsize=10)
    return fig


def figure_data_uri(fig) -> str:
    """A matplotlib figure as a PNG data: URI (no timestamp in it: same data, same bytes)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def figure_markdown(fig, alt: str) -> str:
    """A matplotlib figure as a markdown image, which the Dagster UI renders in metadata."""
    return f"![{alt}]({figure_data_uri(fig)})"
