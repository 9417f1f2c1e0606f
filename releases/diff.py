"""What changed between two releases of a project: rankings added, removed and changed, and the pairs that came
and went, by source.

Rankings are matched by id. A ranking in both whose frozen row differs (a revised order, a new training weight
after a quality refresh, a flag…) is *changed*; its pairs are compared as (better, worse) completion ids, so a
revised order counts the pairs it gained and lost. The comparison reads only the small ``digest``, ``order``,
``source`` and ``n_pairs`` columns; the frozen rows are decompressed only to name the fields of the first
``list_limit`` changed rankings, which bounds the work of one request.
"""

from __future__ import annotations

from collections import defaultdict

from annotation.pairs import ranking_to_pairs
from releases.models import DatasetRelease, ReleaseRanking

LIST_LIMIT = 1000


def _index(release: DatasetRelease) -> dict[int, tuple]:
    rows = (ReleaseRanking.objects.filter(release=release)
            .values_list("ranking_id", "digest", "order", "source", "n_pairs"))
    return {r[0]: r[1:] for r in rows.iterator(chunk_size=5000)}


def _changed_fields(release_a: DatasetRelease, release_b: DatasetRelease, ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    rows = defaultdict(dict)
    for release_id, ranking_id, data in (ReleaseRanking.objects.filter(release__in=[release_a, release_b],
                                                                       ranking_id__in=ids)
                                         .values_list("release_id", "ranking_id", "data")):
        rows[ranking_id][release_id] = ReleaseRanking.decode(data)
    out = {}
    for ranking_id in ids:
        a, b = rows[ranking_id][release_a.pk], rows[ranking_id][release_b.pk]
        out[ranking_id] = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return out


def diff_releases(a: DatasetRelease, b: DatasetRelease, list_limit: int = LIST_LIMIT) -> dict:
    """What `b` holds that `a` did not, and the reverse (a is the older one, usually)."""
    if a.project_id != b.project_id:
        raise ValueError("releases of different projects cannot be compared")
    old, new = _index(a), _index(b)
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = sorted(i for i in old.keys() & new.keys() if old[i][0] != new[i][0])
    pairs = {"added": 0, "removed": 0}
    by_source: dict[str, dict[str, int]] = defaultdict(
        lambda: {"added": 0, "removed": 0, "changed": 0, "pairs_added": 0, "pairs_removed": 0})
    for i in added:
        _, _, source, n = new[i]
        pairs["added"] += n
        by_source[source]["added"] += 1
        by_source[source]["pairs_added"] += n
    for i in removed:
        _, _, source, n = old[i]
        pairs["removed"] += n
        by_source[source]["removed"] += 1
        by_source[source]["pairs_removed"] += n
    for i in changed:
        before, after = set(ranking_to_pairs(old[i][1])), set(ranking_to_pairs(new[i][1]))
        source = new[i][2]
        gained, lost = len(after - before), len(before - after)
        pairs["added"] += gained
        pairs["removed"] += lost
        by_source[source]["changed"] += 1
        by_source[source]["pairs_added"] += gained
        by_source[source]["pairs_removed"] += lost
    fields = _changed_fields(a, b, changed[:list_limit])

    def release(r: DatasetRelease) -> dict:
        return {"id": r.pk, "name": r.name, "sha256": r.sha256, "n_rankings": r.n_rankings, "n_pairs": r.n_pairs}

    return {
        "a": release(a),
        "b": release(b),
        "identical": a.sha256 == b.sha256,
        "rankings": {"added": len(added), "removed": len(removed), "changed": len(changed),
                     "unchanged": len(old.keys() & new.keys()) - len(changed)},
        "pairs": pairs,
        "by_source": {source: counts for source, counts in sorted(by_source.items())},
        "added_ids": added[:list_limit],
        "removed_ids": removed[:list_limit],
        "changed": [{"ranking_id": i, "fields": fields[i]} for i in changed[:list_limit]],
        "truncated": max(len(added), len(removed), len(changed)) > list_limit,
    }


def summary_lines(diff: dict, changed_shown: int = 20) -> list[str]:
    """The diff in a few lines of text (the command's output, the admin's)."""
    r, p = diff["rankings"], diff["pairs"]
    lines = [f"{diff['a']['name']} → {diff['b']['name']}" + (" (identical)" if diff["identical"] else ""),
             f"rankings: +{r['added']:,} added, -{r['removed']:,} removed, {r['changed']:,} changed, "
             f"{r['unchanged']:,} unchanged",
             f"pairs: +{p['added']:,} added, -{p['removed']:,} removed"]
    for source, c in diff["by_source"].items():
        lines.append(f"  {source}: +{c['added']:,} / -{c['removed']:,} / ~{c['changed']:,} rankings; "
                     f"+{c['pairs_added']:,} / -{c['pairs_removed']:,} pairs")
    for change in diff["changed"][:changed_shown]:
        lines.append(f"  ranking {change['ranking_id']} changed: {', '.join(change['fields'])}")
    if diff["rankings"]["changed"] > changed_shown:
        lines.append(f"  … and {diff['rankings']['changed'] - changed_shown:,} more changed")
    return lines
