"""Validation charts (matplotlib figures, for asset metadata and the report): score by tenure for
retained vs churned, churn per band."""

import polars as pl

TENURE_BUCKETS = [0, 6, 12, 24, 36]  # months; the last bucket is open-ended


def tenure_bucket(months: pl.Expr) -> pl.Expr:
    labels = [f"{a}-{b}" for a, b in zip(TENURE_BUCKETS, TENURE_BUCKETS[1:])] + [f"{TENURE_BUCKETS[-1]}+"]
    return months.cut(TENURE_BUCKETS[1:], labels=labels, left_closed=True).cast(pl.String)


def score_by_tenure_boxplot(rows: pl.DataFrame, title: str):
    """Box plots of the score per tenure bucket (months at the scoring snapshot), retained vs churned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = rows.with_columns(bucket=tenure_bucket((pl.col("tenure_days") / 30.44).floor()))
    labels = [f"{a}-{b}" for a, b in zip(TENURE_BUCKETS, TENURE_BUCKETS[1:])] + [f"{TENURE_BUCKETS[-1]}+"]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    for offset, (churned, colour, name) in enumerate([(False, "#55a868", "retained"), (True, "#c44e52", "churned")]):
        data = [
            frame.filter(pl.col("bucket") == b, pl.col("churned") == churned)["health_score"].cast(pl.Float64).to_list()
            for b in labels
        ]
        positions = [i * 3 + offset for i in range(len(labels))]
        parts = ax.boxplot(
            [d or [float("nan")] for d in data], positions=positions, widths=0.8, patch_artist=True, showfliers=False
        )
        for box in parts["boxes"]:
            box.set_facecolor(colour)
        ax.plot([], [], color=colour, linewidth=6, label=name)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(labels))], [f"{b} mo" for b in labels])
    ax.set_ylim(0, 100)
    ax.set_ylabel("health score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def churn_per_band_chart(per_band: pl.DataFrame, title: str):
    """The churn rate of each band (`band`, `churn_rate`), a bar per band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"red": "#c44e52", "yellow": "#dd8452", "green": "#55a868"}
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=90)
    names, rates = per_band["band"].to_list(), per_band["churn_rate"].to_list()
    ax.bar(names, [r * 100 for r in rates], color=[colours.get(n, "#4c72b0") for n in names])
    for i, r in enumerate(rates):
        ax.text(i, r * 100, f"{r:.1%}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("churn rate (%)")
    ax.set_title(title, fontsize=10)
    return fig
