"""Held-out metrics: pairwise accuracy, ECE before/after temperature scaling, reward–length correlation, flip rate."""

from __future__ import annotations

import numpy as np


def pairwise_accuracy(diffs: np.ndarray) -> float:
    """diffs = r_winner − r_loser; a tie in score counts half."""
    if diffs.size == 0:
        return float("nan")
    return float(((diffs > 0).sum() + 0.5 * (diffs == 0).sum()) / diffs.size)


def oriented(diffs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Randomly orient each pair (seeded) so the labels hold both classes: (score differences, labels 0/1)."""
    flip = np.random.default_rng(seed).random(diffs.size) < 0.5
    return np.where(flip, -diffs, diffs), (~flip).astype(float)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


# Temperature scaling is fitted only with enough held-out pairs, and within bounds: on a handful of pairs the
# optimum runs off to T→0 or T→∞ (seen: 0.013 and 148) and makes calibration worse, not better.
MIN_CALIBRATION_PAIRS = 50
TEMPERATURE_BOUNDS = (0.1, 10.0)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the NLL of σ(d / T), searched within TEMPERATURE_BOUNDS."""
    from scipy import optimize  # loaded on use (~1.7 s): commands and web processes start without it
    if logits.size == 0:
        return 1.0
    lo, hi = np.log(TEMPERATURE_BOUNDS)
    res = optimize.minimize_scalar(lambda lt: _nll(logits, labels, float(np.exp(lt))), bounds=(lo, hi),
                                   method="bounded")
    return float(np.exp(res.x))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and per-bin (confidence, accuracy, count) for a reliability diagram."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            conf, acc = float(probs[mask].mean()), float(labels[mask].mean())
            ece += n / probs.size * abs(conf - acc)
            table.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "confidence": conf, "accuracy": acc,
                          "count": n})
    return float(ece), table


def calibration(diffs: np.ndarray, seed: int) -> dict:
    """ECE of σ(r_w − r_l) before and after temperature scaling fitted on the same held-out pairs.

    With fewer than MIN_CALIBRATION_PAIRS pairs, T stays 1 and ``temperature_skipped`` says why.
    """
    if diffs.size == 0:
        return {"temperature": 1.0, "ece_before": float("nan"), "ece_after": float("nan"),
                "reliability_before": [], "reliability_after": [], "temperature_skipped": "no held-out pairs"}
    logits, labels = oriented(diffs, seed)
    skipped = None
    if diffs.size < MIN_CALIBRATION_PAIRS:
        temperature = 1.0
        skipped = f"{diffs.size} held-out pairs, fewer than the {MIN_CALIBRATION_PAIRS} temperature scaling needs"
    else:
        temperature = fit_temperature(logits, labels)
    ece_before, table_before = reliability(1 / (1 + np.exp(-logits)), labels)
    ece_after, table_after = reliability(1 / (1 + np.exp(-logits / temperature)), labels)
    return {"temperature": temperature, "ece_before": ece_before, "ece_after": ece_after,
            "reliability_before": table_before, "reliability_after": table_after, "temperature_skipped": skipped}


def length_correlation(rewards: np.ndarray, lengths: np.ndarray) -> dict:
    from scipy import stats  # loaded on use (~1.7 s): commands and web processes start without it
    if rewards.size < 3 or np.ptp(rewards) == 0 or np.ptp(lengths) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {"pearson": float(stats.pearsonr(rewards, lengths)[0]),
            "spearman": float(stats.spearmanr(rewards, lengths)[0])}


def flip_rate(new_diffs: np.ndarray, old_diffs: np.ndarray) -> float:
    """Share of held-out pairs whose preferred side differs between two versions."""
    if new_diffs.size == 0:
        return float("nan")
    return float(np.mean(np.sign(new_diffs) != np.sign(old_diffs)))


def clean(value):
    """JSON-safe copy: NaN/inf → None."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


# |Spearman ρ| between reward and length from which a version is flagged: the reward model may be paying for length
# rather than quality (Goodhart; Singhal et al. 2023 found RLHF's gains largely length). A threshold, not a test: held-
# out sets are small, and a real preference for fuller answers also correlates.
LENGTH_BIAS_RHO = 0.3


def warnings_for(metrics: dict) -> list[str]:
    """Plain-language warnings about a version's held-out metrics (shown next to the numbers)."""
    out = []
    rho = (metrics.get("length_correlation") or {}).get("spearman")
    if isinstance(rho, float) and rho == rho and abs(rho) >= LENGTH_BIAS_RHO:
        direction = "longer" if rho > 0 else "shorter"
        out.append(f"reward follows length (Spearman ρ {rho:+.2f} on held-out answers): it may be rewarding "
                   f"{direction} answers rather than better ones; compare with the raters' length preference before "
                   "promoting")
    accuracy = metrics.get("heldout_accuracy")
    if isinstance(accuracy, float) and accuracy < 0.5:
        out.append(f"held-out accuracy {accuracy:.3f} is below chance: the model prefers what raters rejected")
    return out
