"""A release as a Hugging Face ``datasets`` folder: Parquet shards of two configs and a dataset card.

::

    README.md                                  the card; its YAML front matter declares the configs and splits
    release.json                               name, project, counts and hash, for scripts
    pairs/train-00000-of-00001.parquet         one row per strict pair (TRL's prompt/chosen/rejected + provenance)
    rankings/train-00000-of-00001.parquet      one row per K-way ranking (prompt, completions, tie groups)
    pairs/heldout-… rankings/heldout-…         with include_eval: the evaluation stream's rankings

The layout is the one ``Dataset.push_to_hub`` writes for named configs, so ``datasets.load_dataset(folder, "pairs")``
and ``load_dataset(folder, "rankings")`` read it as it is, and so does the Hub once uploaded. Only pyarrow is needed
to write it; ``save_to_disk`` (``DatasetDict.save_to_disk`` output) needs the ``datasets`` library (a dev extra).

Rows are those of the project's exports (``annotation.exporter``: ``trl_rows`` and ``iter_rankings``) with a
``split`` column, read from the release's frozen rows, never from the live rankings. Memory holds one Parquet row
group at a time; shard counts are known in advance from the release's counts, so names carry ``-of-N``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from itertools import islice
from math import ceil
from pathlib import Path

from annotation.exporter import trl_rows, write_parquet
from releases.models import HELDOUT, TRAIN, DatasetRelease, ReleaseRanking

RANKINGS_PER_SHARD = 50_000
PAIRS_PER_SHARD = 200_000
CONFIGS = ("pairs", "rankings")
FORMATS = ("parquet", "save_to_disk")


class ExportError(Exception):
    pass


def iter_release_rankings(release: DatasetRelease, split: str) -> Iterator[dict]:
    """The release's frozen ranking rows of one split, in ranking id order, from a server-side cursor."""
    rows = (ReleaseRanking.objects.filter(release=release, split=split).order_by("ranking_id")
            .values_list("data", flat=True))
    for data in rows.iterator(chunk_size=500):
        yield ReleaseRanking.decode(data)


def iter_release_pairs(release: DatasetRelease, split: str) -> Iterator[dict]:
    """The release's pairs of one split: ``trl_rows`` of each frozen ranking, with its split."""
    for ranking in iter_release_rankings(release, split):
        for pair in trl_rows(ranking):
            pair["split"] = ranking["split"]
            yield pair


def _splits(release: DatasetRelease) -> list[str]:
    return [s for s in (TRAIN, HELDOUT) if release.splits.get(s, {}).get("rankings")]


def write_folder(release: DatasetRelease, out: Path, rankings_per_shard: int = RANKINGS_PER_SHARD,
                 pairs_per_shard: int = PAIRS_PER_SHARD) -> dict:
    """Write the release to `out` (absent or empty); returns {"path", "files": [relative paths], counts}."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder")
    files: list[str] = []
    plan = {"pairs": (iter_release_pairs, "trl", pairs_per_shard),
            "rankings": (iter_release_rankings, "rankings", rankings_per_shard)}
    for config in CONFIGS:
        rows_of, kind, per_shard = plan[config]
        (out / config).mkdir(parents=True, exist_ok=True)
        for split in _splits(release):
            total = release.splits[split][config]
            n_shards = max(1, ceil(total / per_shard))
            size = ceil(total / n_shards)
            rows = rows_of(release, split)
            written = 0
            for i in range(n_shards):
                name = f"{config}/{split}-{i:05d}-of-{n_shards:05d}.parquet"
                written += write_parquet(islice(rows, size), out / name, kind, extra_columns=("split",))
                files.append(name)
            if written != total or next(rows, None) is not None:
                raise ExportError(f"release {release.name!r}: {config}/{split} holds a different number of rows "
                                  f"than it recorded ({total})")
    (out / "README.md").write_text(dataset_card(release), encoding="utf-8")
    (out / "release.json").write_text(json.dumps(describe(release), indent=2) + "\n", encoding="utf-8")
    return {"path": str(out), "files": sorted([*files, "README.md", "release.json"]), **describe(release)}


def describe(release: DatasetRelease) -> dict:
    return {"release": release.name, "release_id": release.pk, "project": release.project.name,
            "project_id": release.project_id, "created_at": release.created_at.isoformat(),
            "n_rankings": release.n_rankings, "n_pairs": release.n_pairs, "splits": release.splits,
            "by_source": release.by_source, "include_eval": release.include_eval, "sha256": release.sha256}


def datasets_available() -> bool:
    return importlib.util.find_spec("datasets") is not None


def save_to_disk(release: DatasetRelease, out: Path) -> dict:
    """``DatasetDict.save_to_disk`` output, one folder per config (``out/pairs``, ``out/rankings``: read them with
    ``datasets.load_from_disk``), and the card. Needs the ``datasets`` library."""
    if not datasets_available():
        raise ExportError("--format save_to_disk needs the datasets library (pip install datasets, or the project's "
                          "[dev] extra); the parquet format does not")
    import datasets

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder")
    with tempfile.TemporaryDirectory(prefix="verdict-release-") as tmp:
        folder = Path(tmp) / "folder"
        write_folder(release, folder)
        for config in CONFIGS:
            # A cache of its own: nothing lands in the user's ~/.cache/huggingface.
            loaded = datasets.load_dataset(str(folder), config, cache_dir=str(Path(tmp) / "cache"))
            loaded.save_to_disk(str(out / config))
        shutil.copy2(folder / "README.md", out / "README.md")
        shutil.copy2(folder / "release.json", out / "release.json")
    return {"path": str(out), "files": sorted(p.name for p in out.iterdir()), **describe(release)}


def zip_release(release: DatasetRelease):
    """The folder as a zip (an open, unnamed temporary file at position 0; closing it deletes it), its entries
    under ``<release name>/``. Parquet is compressed already, so it is stored; the text files are deflated."""
    archive = tempfile.TemporaryFile(prefix="verdict-release-", suffix=".zip")
    try:
        with tempfile.TemporaryDirectory(prefix="verdict-release-") as tmp:
            folder = Path(tmp) / release.name
            written = write_folder(release, folder)
            with zipfile.ZipFile(archive, "w") as zf:
                for name in written["files"]:
                    method = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
                    zf.write(folder / name, f"{release.name}/{name}", compress_type=method)
        archive.seek(0)
    except BaseException:
        archive.close()
        raise
    return archive


def _yaml(value: str) -> str:
    """A YAML scalar for any text: a JSON string is valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def dataset_card(release: DatasetRelease) -> str:
    """README.md: the front matter ``datasets`` reads (configs, splits, license) and the card people read."""
    project = release.project
    splits = _splits(release)
    front = ["---", f"pretty_name: {_yaml(release.name)}",
             f"license: {_yaml(release.license or 'unknown')}",
             "tags:", "- rlhf", "- preference", "- reward-modeling", "configs:"]
    for config in CONFIGS:
        front.append(f"- config_name: {config}")
        if config == "pairs":
            front.append("  default: true")
        front.append("  data_files:")
        for split in splits:
            front += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    front.append("---")
    counts = "\n".join(f"| {split} | {release.splits[split]['rankings']:,} | {release.splits[split]['pairs']:,} |"
                       for split in splits)
    sources = ", ".join(f"{source}: {n:,}" for source, n in release.by_source.items())
    license_line = (release.license if release.license
                    else "unknown: a placeholder, set `license` (e.g. cc-by-4.0) before publishing")
    body = f"""
# {release.name}

A dataset release of the Verdict project **{project.name}** (project id {project.pk}), made
{release.created_at:%Y-%m-%d %H:%M} UTC. Release id {release.pk}.

{release.description or "(no description)"}

- **License:** {license_line}
- **Content hash (sha256):** `{release.sha256}`, over each ranking's id, split and the digest of its frozen row.
- **Rankings by source:** {sources}

| split | rankings | pairs |
| --- | --- | --- |
{counts}

## How it was collected

Raters ranked K completions of each prompt from best to worst, ties allowed, in Verdict's rating interface; the
completions were shown in a random order per rater. Rankings may also come from imported preference datasets
(`source = imported`, with the dataset's name and its own rater id) and, when the project trains on them, from AI
judges (`source = judge`). The release holds what reward-model training learns from: unflagged rankings, not
rejected in review, of tasks not excluded from training, of raters whose training weight (their estimated
reliability) is above 0, with at least one strict preference.
{"The `heldout` split is the project's evaluation stream: a uniformly random sample of tasks that active learning "
 "never routes, whose rankings are never trained on." if HELDOUT in splits else
 "The project's evaluation stream (its held-out rankings) is not included."}
The release is frozen: later edits to the rankings do not change it.

## Configs

```python
from datasets import load_dataset

pairs = load_dataset("path/to/this/folder", "pairs")        # train (and heldout) splits
rankings = load_dataset("path/to/this/folder", "rankings")
```

### `pairs`: one row per strict pair

A K-way ranking without ties gives K·(K−1)/2 pairs; tied completions give none.

| column | meaning |
| --- | --- |
| prompt, chosen, rejected | the prompt, the preferred completion and the other one |
| chosen_model, rejected_model | the models that wrote them |
| ranking_id, task_id | the ranking and the task in Verdict |
| rater_id | the rater's pseudonymous numeric id (no name) |
| weight | the ranking's training weight (its rater's reliability; 1 before any estimate) |
| reask, origin_task_id | a re-ask routed by active learning, and the task it asks again |
| source, dataset, original_rater | rater, imported or judge; an imported dataset's name and rater id |
| split | train or heldout |

### `rankings`: one row per K-way ranking

| column | meaning |
| --- | --- |
| prompt, prompt_id, prompt_external_id | the prompt and its ids |
| completions | list of {{id, model, text}} |
| order | tie groups of completion ids, best first: `[[12], [10, 13], [11]]` is 12 ≻ 10 = 13 ≻ 11 |
| criteria_orders | JSON: per criterion (helpful, harmless, …), tie groups, when the rater gave them |
| display_order | the completion ids in the order the rater saw them |
| rationale, flags, time_spent_ms, submitted_at | what the rater wrote, flagged, and when |
| ranking_id, task_id, rater_id, weight, reask, origin_task_id, source, dataset, original_rater | as in `pairs` |
| is_gold | a gold task (one with a known answer, to check raters) |
| split | train or heldout |
"""
    return "\n".join(front) + "\n" + body
