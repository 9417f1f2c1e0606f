"""Server-side PNG plots of a version's metrics (matplotlib Agg): loss curve, held-out curve during training,
reliability diagram, reward vs length."""

from __future__ import annotations

from config.charts import new_figure, png_bytes

KINDS = ("loss", "heldout", "reliability", "length")


def curve_png(curve: list) -> bytes:
    """The held-out curve recorded while training ([step, train loss, held-out accuracy] points): accuracy on the
    left axis, the train loss on the right; a run still training draws the points it has."""
    fig, ax = new_figure(figsize=(5, 3.4))
    _draw_curve(ax, curve)
    return png_bytes(fig)


def _draw_curve(ax, curve: list) -> None:
    points = [p for p in curve or [] if isinstance(p, list | tuple) and len(p) == 3]
    steps = [p[0] for p in points]
    measured = [(p[0], p[2]) for p in points if p[2] is not None]
    ax.plot([s for s, _ in measured], [a for _, a in measured], marker="o", ms=3, c="tab:blue",
            label="held-out accuracy")
    ax.axhline(0.5, ls="--", c="grey", lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("held-out accuracy while training" if points else "held-out curve (none recorded)")
    loss_ax = ax.twinx()
    loss_ax.plot(steps, [p[1] for p in points], c="tab:orange", lw=1, label="train loss")
    loss_ax.set_ylabel("train loss")
    lines = ax.get_lines()[:1] + loss_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower left")


def render(kind: str, metrics: dict) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}")
    fig, ax = new_figure(figsize=(5, 3.4))
    if kind == "heldout":
        _draw_curve(ax, metrics.get("heldout_curve") or [])
    elif kind == "loss":
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

