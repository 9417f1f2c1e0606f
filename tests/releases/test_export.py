"""A release as a Hugging Face datasets folder: `datasets.load_dataset(folder, "pairs")` and "rankings" read it as
written (K=4 → 6 pairs, ties give none), shards are named -of-N, and save_to_disk output reads with load_from_disk."""

from __future__ import annotations

import io
import zipfile

import datasets
import pyarrow.parquet as pq
import pytest

from releases.build import create_release
from releases.export import ExportError, save_to_disk, write_folder, zip_release


@pytest.fixture
def release(project, ranked):
    return create_release(project, "v1", "Helpfulness rankings, spring.", license="cc-by-4.0", include_eval=True)


def _pairs(ds) -> set:
    return {(r["prompt"], r["chosen"], r["rejected"]) for r in ds}


def test_load_dataset_reads_both_configs(release, ranked, rater, tmp_path):
    out = tmp_path / "v1"
    written = write_folder(release, out)
    assert set(written["files"]) == {"README.md", "release.json", "pairs/train-00000-of-00001.parquet",
                                     "pairs/heldout-00000-of-00001.parquet", "rankings/train-00000-of-00001.parquet",
                                     "rankings/heldout-00000-of-00001.parquet"}
    cache = str(tmp_path / "cache")
    pairs = datasets.load_dataset(str(out), "pairs", cache_dir=cache)
    assert set(pairs) == {"train", "heldout"}
    assert pairs["train"].num_rows == 11 and pairs["heldout"].num_rows == 6
    strict = pairs["train"].filter(lambda r: r["ranking_id"] == ranked.strict.pk)
    assert _pairs(strict) == {("Pick one", w, lo) for w, lo in
                              [("C", "A"), ("C", "D"), ("C", "B"), ("A", "D"), ("A", "B"), ("D", "B")]}
    tied = pairs["train"].filter(lambda r: r["ranking_id"] == ranked.tied.pk)
    assert tied.num_rows == 5 and ("E", "F") not in {(r["chosen"], r["rejected"]) for r in tied}
    row = strict[0]
    assert row["rater_id"] == rater.pk and row["source"] == "rater" and row["weight"] == 1.0
    assert row["chosen_model"].startswith("model-") and row["split"] == "train"
    assert set(pairs["heldout"]["split"]) == {"heldout"}

    rankings = datasets.load_dataset(str(out), "rankings", cache_dir=cache)
    assert rankings["train"]["ranking_id"] == sorted([ranked.strict.pk, ranked.tied.pk])
    first = rankings["train"][0]
    assert first["prompt"] == "Pick one" and [c["text"] for c in first["completions"]] == ["A", "B", "C", "D"]
    by_text = {c["id"]: c["text"] for c in first["completions"]}
    assert [[by_text[c] for c in group] for group in first["order"]] == [["C"], ["A"], ["D"], ["B"]]
    second = rankings["train"][1]
    by_text = {c["id"]: c["text"] for c in second["completions"]}
    assert [sorted(by_text[c] for c in group) for group in second["order"]] == [["E", "F"], ["G"], ["H"]]

    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: pairs" in card and "config_name: rankings" in card
    assert 'license: "cc-by-4.0"' in card and release.sha256 in card and "Helpfulness rankings, spring." in card


def test_shards_are_numbered_and_hold_every_row(release, tmp_path):
    out = tmp_path / "v1"
    written = write_folder(release, out, rankings_per_shard=1, pairs_per_shard=4)
    shards = sorted(f for f in written["files"] if f.startswith("pairs/train-"))
    assert shards == [f"pairs/train-0000{i}-of-00003.parquet" for i in range(3)]  # 11 pairs, 4 a shard
    assert [pq.read_metadata(out / s).num_rows for s in shards] == [4, 4, 3]
    loaded = datasets.load_dataset(str(out), "rankings", cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == 2 and loaded["heldout"].num_rows == 1
    with pytest.raises(ExportError):
        write_folder(release, out)  # not empty


def test_save_to_disk_reads_with_load_from_disk(release, tmp_path):
    out = tmp_path / "disk"
    save_to_disk(release, out)
    pairs = datasets.load_from_disk(str(out / "pairs"))
    rankings = datasets.load_from_disk(str(out / "rankings"))
    assert isinstance(pairs, datasets.DatasetDict)
    assert (pairs["train"].num_rows, pairs["heldout"].num_rows) == (11, 6)
    assert rankings["train"].num_rows == 2 and (out / "README.md").is_file()


def test_zip_holds_the_folder(release, tmp_path):
    with zip_release(release) as archive:
        data = archive.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert {"v1/README.md", "v1/pairs/train-00000-of-00001.parquet"} <= names
        zf.extractall(tmp_path)
    loaded = datasets.load_dataset(str(tmp_path / "v1"), "pairs", cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == 11
