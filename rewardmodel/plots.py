"""Server-side PNG plots of a version's metrics (matplotlib Agg): loss curve, reliability diagram, reward vs length."""

from __future__ import annotations

from config.charts import new_figure, png_bytes

KINDS = ("loss", "reliability", "length")


def render(kind: str, metrics: dict) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}")
    fig, ax = new_figure(figsize=(5, 3.4))
    if kind == "loss":
        losses = metrics.get("loss_curve") or []
        ax.plot(range(1, len(losses) + 1), losses, lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title("training loss")
    elif kind == "reliability":
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
        for key, label in (("reliability_before", "raw"), ("reliability_after", "temperature-scaled")):
            rows = metrics.get(key) or []
            ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=label)
        t = metrics.get("temperature")
        ax.set_title(f"reliability (T={t:.2f})" if isinstance(t, float) else "reliability")
        ax.set_xlabel("predicted P(first preferred)")
        ax.set_ylabel("observed frequency")
        ax.legend(fontsize=8)
    else:
        points = metrics.get("reward_vs_length") or []
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.5)
        corr = (metrics.get("length_correlation") or {}).get("spearman")
        ax.set_title(f"reward vs length (Spearman {corr:.2f})" if isinstance(corr, float) else "reward vs length")
        ax.set_xlabel("completion length (characters)")
        ax.set_ylabel("reward")
    return png_bytes(fig)

