"""The Goodhart watch as a PNG (admin): a run's windows over training steps, with the project's alarm lines."""

from __future__ import annotations

from config.charts import new_figure, png_bytes


def watch_png(windows: list, policy) -> bytes:
    """Four panels over the run's windows: reward (median, 10–90 % band), reward–length correlation, share far from
    the training data, rater disagreement; dashed lines are the alarms."""
    fig, axes = new_figure((12, 3), ncols=4)
    x = [w.step_max if w.step_max is not None else i for i, w in enumerate(windows)]
    label = "step" if any(w.step_max is not None for w in windows) else "window"
    reward = [w for w in windows if w.reward_quantiles]
    if reward:
        rx = [x[windows.index(w)] for w in reward]
        axes[0].fill_between(rx, [w.reward_quantiles[0] for w in reward], [w.reward_quantiles[-1] for w in reward],
                             alpha=0.25, label="10–90 %")
        axes[0].plot(rx, [w.reward_quantiles[2] for w in reward], marker="o", label="median")
        axes[0].legend(fontsize=7)
    axes[0].set_title("reward")
    series = [("length_correlation", "reward–length ρ", policy.alarm_length_correlation, (-1, 1)),
              ("far_share", "far from training data", policy.alarm_far_share, (0, 1)),
              ("disagreement", "raters disagree with RM", policy.alarm_disagreement, (0, 1))]
    for ax, (field, title, alarm, limits) in zip(axes[1:], series, strict=True):
        points = [(xi, getattr(w, field)) for xi, w in zip(x, windows, strict=True) if getattr(w, field) is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        ax.axhline(alarm, linestyle="--", color="tab:red", linewidth=1)
        ax.set_ylim(*limits)
        ax.set_title(title)
    for ax in axes:
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    return png_bytes(fig)
