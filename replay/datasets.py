"""Real human preference data from ../shared/data, read in place: PandaLM, LLMFAO crowd votes, HH-RLHF harmless.

Each reader gives the distinct (prompt, completion) items, the pairs with their majority label (for evaluation)
and every real vote on each pair (for simulated raters, so their disagreement is the humans' own, not invented).
Used by the replay (``replay_raters``) and by ``bench/active_learning_sim.py``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# ../shared/data beside the checkout; VERDICT_SHARED_DATA points elsewhere (a GPU machine gets a copy: DEVELOPERS.md).
DATA_DIR = Path(os.environ.get("VERDICT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@dataclass
class PreferenceData:
    items: list[tuple[str, str]] = field(default_factory=list)  # (prompt, completion)
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (preferred, other) by the majority of votes
    votes: list[list[int]] = field(default_factory=list)  # per pair: +1 the first is preferred, -1 the other, 0 tie
    models: list[str] = field(default_factory=list)  # per item: the model that wrote it, where the data says
    _index: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def item(self, prompt: str, text: str, model: str = "") -> int:
        key = (prompt, text)
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(key)
            self.models.append(model)
        return self._index[key]

    def add(self, prompt: str, first: str, second: str, votes_for_first: list[int],
            models: tuple[str, str] = ("", "")) -> None:
        """Add a pair from its votes (+1 first, −1 second, 0 tie); skipped without a strict majority."""
        total = sum(votes_for_first)
        a, b = self.item(prompt, first, models[0]), self.item(prompt, second, models[1])
        if total == 0 or a == b:
            return
        if total > 0:
            self.pairs.append((a, b))
            self.votes.append(list(votes_for_first))
        else:
            self.pairs.append((b, a))
            self.votes.append([-v for v in votes_for_first])


def split_dialogue(text: str) -> tuple[str, str]:
    """Prompt = the dialogue up to the last assistant turn; completion = that final turn."""
    i = text.rfind("\n\nAssistant:")
    return text[:i].strip(), text[i + len("\n\nAssistant:") :].strip()


def read_hh(path: Path) -> PreferenceData:
    """HH-RLHF harmless: one human label per pair (which dialogue was chosen)."""
    data = PreferenceData()
    for line in path.open():
        r = json.loads(line)
        (prompt, chosen), (_, rejected) = split_dialogue(r["chosen"]), split_dialogue(r["rejected"])
        data.add(prompt, chosen, rejected, [1])
    return data


def read_pandalm(path: Path) -> PreferenceData:
    """PandaLM test set: 3 fixed annotators (1 or 2 picks a response, 0 a tie); kept when 2 or 3 of them agree."""
    data = PreferenceData()
    for r in json.loads(path.read_text()):
        prompt = (str(r["instruction"]) + "\n\n" + str(r.get("input") or "")).strip()
        votes = [{1: 1, 2: -1}.get(r[f"annotator{i}"], 0) for i in (1, 2, 3)]
        if max(votes.count(1), votes.count(-1)) < 2:
            continue
        data.add(prompt, str(r["response1"]), str(r["response2"]), votes)  # a few responses are JSON booleans
    return data


def read_llmfao(path: Path) -> PreferenceData:
    """LLMFAO crowd votes (124 workers, ties allowed): every worker's vote on a comparison; kept with a strict
    majority of the non-tie votes. As in bench/train_vs_trl.py, "left" is read as a vote for model_x."""
    texts: dict[int, tuple[str, str, str, tuple[str, str]]] = {}
    with (path.parent / "llmfao-pairs-crowd.jsonl").open() as fh:
        for line in fh:
            r = json.loads(line)
            texts[r["id"]] = (r["text"], r["result_x"], r["result_y"], (str(r["model_x"]), str(r["model_y"])))
    votes: dict[int, list[int]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            votes.setdefault(int(row["id"]), []).append({"left": 1, "right": -1}.get(row["winner"], 0))
    data = PreferenceData()
    for cid in sorted(votes):
        if cid in texts:
            prompt, x, y, models = texts[cid]
            data.add(prompt, x, y, votes[cid], models)
    return data


DATASETS = {
    "pandalm": ("pandalm-testset-v1.json", read_pandalm),
    "llmfao": ("llmfao-crowd-comparisons.csv", read_llmfao),
    "hh": ("hh-harmless-dev.jsonl", read_hh),
}


def dataset_path(name: str, data_dir: Path = DATA_DIR) -> Path:
    return data_dir / DATASETS[name][0]


def load(name: str, data_dir: Path = DATA_DIR) -> PreferenceData:
    """Read one dataset in place; FileNotFoundError when ../shared/data (or the file) is absent."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    path = dataset_path(name, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (the shared preference data lives in ../shared/data)")
    return DATASETS[name][1](path)
