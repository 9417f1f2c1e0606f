"""Server-side PNG plots of the quality page (matplotlib Agg): model leaderboard, consensus confidence, raters."""

from __future__ import annotations

from config.charts import new_figure, png_bytes

KINDS = ("leaderboard", "confidence", "raters")


def leaderboard_png(rows: list[dict]) -> bytes:
    """Elo-scale scores with their bootstrap 95 % intervals, best at the top."""
    rows = rows[:40]
    fig, ax = new_figure(figsize=(6, max(2.2, 0.28 * len(rows) + 1)))
    ys = list(range(len(rows)))[::-1]
    ax.errorbar([r["elo"] for r in rows], ys,
                xerr=[[r["elo"] - r["elo_low"] for r in rows], [r["elo_high"] - r["elo"] for r in rows]],
                fmt="o", ms=4, capsize=2)
    ax.set_yticks(ys)
    ax.set_yticklabels([r["model"][:40] for r in rows], fontsize=8)
    ax.set_xlabel("Bradley–Terry score (Elo scale), 95 % bootstrap interval")
    ax.set_title("model leaderboard")
    return png_bytes(fig)


def confidence_png(histogram: dict, threshold: float) -> bytes:
    bins, counts = histogram.get("bins") or [], histogram.get("counts") or []
    fig, ax = new_figure(figsize=(5, 3))
    if counts:
        ax.bar([(lo + hi) / 2 for lo, hi in zip(bins[:-1], bins[1:], strict=True)], counts,
               width=[hi - lo for lo, hi in zip(bins[:-1], bins[1:], strict=True)], edgecolor="white", align="center")
    ax.axvline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set_xlabel("task consensus confidence (least sure pair)")
    ax.set_ylabel("tasks")
    ax.legend(loc="upper left", fontsize=8)
    return png_bytes(fig)


def raters_png(rows: list[dict], threshold: float) -> bytes:
    """Each rater's reliability with its 95 % interval, against the evidence it rests on."""
    rows = [r for r in rows if r["reliability"] is not None]
    fig, ax = new_figure(figsize=(5, 3))
    for flagged, colour, label in ((False, "tab:blue", "rater"), (True, "tab:red", "flagged unreliable")):
        sel = [r for r in rows if ("unreliable" in r["flags"]) == flagged]
        if sel:
            ax.errorbar([r["evidence"] for r in sel], [r["reliability"] for r in sel],
                        yerr=[[r["reliability"] - r["reliability_low"] for r in sel],
                              [r["reliability_high"] - r["reliability"] for r in sel]],
                        fmt="o", ms=4, capsize=2, color=colour, label=label)
    ax.axhline(threshold, color="grey", ls="--", lw=1)
    ax.set_xscale("symlog")
    ax.set_ylim(0, 1)
    ax.set_xlabel("evidence (comparisons)")
    ax.set_ylabel("reliability, 95 % interval")
    if rows:
        ax.legend(loc="lower right", fontsize=8)
    return png_bytes(fig)
