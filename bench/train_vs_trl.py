"""Benchmark: Verdict's reward-model trainer vs TRL's RewardTrainer on the same backbone, data and hardware.

Data: K=4 rankings built from LLMFAO crowd votes (../shared/data, read in place); see bench/README.md.
Both trainers get 1 epoch over the same training rankings (ours as rankings, TRL as their K·(K−1)/2 pairs),
the same learning rate, about the same pairs per optimiser step (ours 3 rankings = 18 pairs, TRL 16 pairs), and
the same pre-truncated texts; both are scored by pairwise accuracy on rankings of held-out models' responses.
Throughput = training comparisons / seconds inside the training call.

    .venv/bin/python bench/train_vs_trl.py [--seeds 0 1 2] [--max-rankings 240] [--device cpu|cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from annotation.pairs import ranking_to_pairs  # noqa: E402
from rewardmodel.backbones import default_backbone_path, load_backbone  # noqa: E402
from rewardmodel.metrics import pairwise_accuracy  # noqa: E402
from rewardmodel.trainer import RankingExample, TrainConfig, predict, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
K = 4


def crowd_scores(data: Path) -> tuple[dict, dict, dict]:
    """Per (prompt, model): smoothed crowd win rate (win 1, tie ½); plus prompt texts and response texts."""
    votes: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    with open(data / "llmfao-crowd-comparisons.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p, x, y = int(row["prompt"]), int(row["model_x"]), int(row["model_y"])
            win_x = {"left": 1.0, "right": 0.0, "tie": 0.5}[row["winner"]]
            votes[(p, x)][0] += win_x
            votes[(p, y)][0] += 1 - win_x
            votes[(p, x)][1] += 1
            votes[(p, y)][1] += 1
    prompts, texts = {}, {}
    with open(data / "llmfao-pairs-crowd.jsonl") as fh:
        for line in fh:
            r = json.loads(line)
            prompts[r["prompt"]] = r["text"]
            texts[(r["prompt"], r["model_x"])] = r["result_x"]
            texts[(r["prompt"], r["model_y"])] = r["result_y"]
    scores = {key: (w + 1) / (n + 2) for key, (w, n) in votes.items() if key in texts}
    return scores, prompts, texts


def build_rankings(scores: dict, prompts: dict, texts: dict, rounds: int, seed: int,
                   models_kept: set[int]) -> list[RankingExample]:
    """Each round shuffles a prompt's responses (of `models_kept`) into groups of K, ordered by crowd score."""
    rng = random.Random(seed)
    by_prompt: dict[int, list[int]] = defaultdict(list)
    for p, model in sorted(scores):
        if model in models_kept:
            by_prompt[p].append(model)
    out = []
    for _ in range(rounds):
        for p, models in sorted(by_prompt.items()):
            models = models[:]
            rng.shuffle(models)
            for g in range(0, len(models) - K + 1, K):
                group = models[g : g + K]
                levels = sorted({scores[(p, m)] for m in group}, reverse=True)
                order = [[m for m in group if scores[(p, m)] == s] for s in levels]
                index = {m: i for i, m in enumerate(group)}
                pairs = [(index[w], index[lo]) for w, lo in ranking_to_pairs(order)]
                if pairs:
                    out.append(RankingExample(prompts[p], [texts[(p, m)] for m in group], pairs, str(p)))
    return out


def pretruncate(tokenizer, examples: list[RankingExample], prompt_tokens: int, max_length: int) -> None:
    """Cut texts once, up front, so both trainers see identical inputs that fit max_length (TRL drops, not cuts)."""
    budget = max_length - prompt_tokens - 4

    def cut(text: str, n: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n else tokenizer.decode(ids[:n])

    cache: dict[tuple[str, int], str] = {}
    for e in examples:
        e.prompt = cache.setdefault((e.prompt, prompt_tokens), cut(e.prompt, prompt_tokens))
        e.completions = [cache.setdefault((c, budget), cut(c, budget)) for c in e.completions]


def heldout_accuracy(score_fn, examples: list[RankingExample]) -> float:
    prompts = [e.prompt for e in examples for _ in e.completions]
    comps = [c for e in examples for c in e.completions]
    rewards = score_fn(prompts, comps)
    diffs, base = [], 0
    for e in examples:
        diffs.extend(rewards[base + w] - rewards[base + lo] for w, lo in e.pairs)
        base += len(e.completions)
    return pairwise_accuracy(np.array(diffs))


def run_ours(examples, held, args) -> dict:
    model, tok = load_backbone(args.backbone)
    config = TrainConfig(lr=args.lr, batch_rankings=args.batch_rankings, max_length=args.max_length, seed=args.seed,
                         device=args.device, center_coef=0.0, warmup_ratio=0.1)
    result = train(model, tok, examples, config)
    device = torch.device(args.device)
    acc = heldout_accuracy(lambda p, c: predict(model, tok, p, c, args.max_length, device=device)[0].numpy(), held)
    return {"seconds": result.seconds, "pairs": result.n_pairs, "forwards": result.n_forwards,
            "pairs_per_second": result.n_pairs / result.seconds, "heldout_accuracy": acc, "steps": result.steps,
            "final_loss": float(np.mean(result.losses[-10:]))}


def joined(prompt: str, completion: str) -> str:
    return f"{prompt}\n\n{completion}"


def run_trl(examples, held, args) -> dict:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tok = load_backbone(args.backbone)
    if tok.eos_token is None:  # TRL appends EOS to every text; BERT-style tokenizers only have [SEP]
        tok.eos_token = tok.sep_token
    rows = [{"chosen": joined(e.prompt, e.completions[w]), "rejected": joined(e.prompt, e.completions[lo])}
            for e in examples for w, lo in e.pairs]
    with tempfile.TemporaryDirectory() as out:
        config = RewardConfig(output_dir=out, per_device_train_batch_size=args.trl_batch_pairs, num_train_epochs=1,
                              learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0.1,
                              logging_steps=10, save_strategy="no", report_to="none", max_length=None,
                              seed=args.seed, use_cpu=args.device == "cpu", bf16=args.device == "cuda",
                              dataloader_num_workers=0, disable_dropout=True,
                              # TRL's default is on: it costs a second forward per step. Off is TRL at its fastest.
                              gradient_checkpointing=getattr(args, "gradient_checkpointing", False))
        trainer = RewardTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok)
        dropped = len(rows) - len(trainer.train_dataset)  # TRL filters what exceeds max_length (none: pre-cut)
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
    model.eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def score(prompts, comps):
        out = []
        for i in range(0, len(prompts), 64):
            enc = tok([joined(p, c) for p, c in zip(prompts[i : i + 64], comps[i : i + 64], strict=True)],
                      padding=True, truncation=True, max_length=args.max_length, return_tensors="pt").to(device)
            out.append(model(**enc).logits.squeeze(-1).float().cpu())
        return torch.cat(out).numpy()

    return {"seconds": seconds, "pairs": len(rows), "forwards": 2 * len(rows), "pairs_per_second": len(rows) / seconds,
            "heldout_accuracy": heldout_accuracy(score, held), "steps": trainer.state.global_step, "dropped": dropped}


def split(scores: dict, prompts: dict, texts: dict, args, seed: int) -> tuple[list, list]:
    """Held out by responding model: rankings of the held-out models' answers (to the same 13 prompts) test the
    reward model; no held-out text is ever trained on. (Holding out whole prompts leaves 10 training prompts, too
    few for a 1-epoch model to generalise beyond chance: both trainers scored ~0.5 that way.)"""
    models = sorted({m for _, m in scores})
    random.Random(seed).shuffle(models)
    held_models = set(models[: args.heldout_models])
    train_set = build_rankings(scores, prompts, texts, args.rounds, seed, set(models) - held_models)
    held = build_rankings(scores, prompts, texts, 1, seed, held_models)
    random.Random(seed).shuffle(train_set)
    if args.max_rankings:
        train_set = train_set[: args.max_rankings]
    return train_set, held


def one_seed(args, seed: int, scores, prompts, texts, tok) -> dict:
    args.seed = seed
    train_set, held = split(scores, prompts, texts, args, seed)
    pretruncate(tok, train_set + held, args.prompt_tokens, args.max_length)
    run = {"seed": seed, "train_rankings": len(train_set), "train_pairs": sum(len(e.pairs) for e in train_set),
           "heldout_rankings": len(held), "heldout_pairs": sum(len(e.pairs) for e in held),
           }
    if args.only != "trl":
        run["ours"] = run_ours(train_set, held, args)
        print(json.dumps({"seed": seed, "ours": run["ours"]}), flush=True)
    if args.only != "ours":
        run["trl"] = run_trl(train_set, held, args)
        print(json.dumps({"seed": seed, "trl": run["trl"]}), flush=True)
    if "ours" in run and "trl" in run:
        run["speedup"] = run["ours"]["pairs_per_second"] / run["trl"]["pairs_per_second"]
        run["accuracy_delta"] = run["ours"]["heldout_accuracy"] - run["trl"]["heldout_accuracy"]
    return run


def summary(runs: list[dict]) -> dict:
    out = {}
    for side in ("ours", "trl"):
        if side in runs[0]:
            out[side] = {k: float(np.mean([r[side][k] for r in runs]))
                         for k in ("pairs_per_second", "heldout_accuracy")}
    if "speedup" in runs[0]:
        out["speedup"] = float(np.mean([r["speedup"] for r in runs]))
        out["accuracy_delta"] = float(np.mean([r["accuracy_delta"] for r in runs]))
        out["ours_at_least_as_accurate_in"] = f"{sum(r['accuracy_delta'] >= 0 for r in runs)}/{len(runs)} seeds"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backbone", help="local model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--max-rankings", type=int, default=0, help="cap on training rankings (0: all)")
    parser.add_argument("--rounds", type=int, default=4, help="shuffles of each prompt's models into groups of 4")
    parser.add_argument("--heldout-models", type=int, default=15, help="responding models held out for testing")
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--prompt-tokens", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-rankings", type=int, default=3, help="ours: rankings per step (18 pairs, 12 forwards)")
    parser.add_argument("--trl-batch-pairs", type=int, default=16, help="TRL: pairs per step (32 forwards)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one paired run (same split) per seed")
    parser.add_argument("--only", choices=["ours", "trl"], help="run one side only")
    parser.add_argument("--trl-gradient-checkpointing", dest="gradient_checkpointing", action="store_true",
                        help="TRL with its default gradient checkpointing (slower; off is TRL at its fastest)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_vs_trl.json")
    args = parser.parse_args()
    args.backbone = args.backbone or str(default_backbone_path())
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    torch.set_num_threads(args.threads)

    scores, prompts, texts = crowd_scores(args.data)
    _, tok = load_backbone(args.backbone)
    result = {
        "data": "LLMFAO crowd votes → K=4 rankings by per-prompt crowd win rate",
        "k": K, "max_length": args.max_length, "lr": args.lr, "batch_rankings": args.batch_rankings,
        "trl_batch_pairs": args.trl_batch_pairs, "device": args.device, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "backbone": Path(args.backbone).name if Path(args.backbone).name != "model" else "all-MiniLM-L6-v2",
        "trl_gradient_checkpointing": args.gradient_checkpointing,
    }
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name(0)
    if args.only != "ours":
        import trl

        result["trl_version"] = trl.__version__
    result["runs"] = [one_seed(args, seed, scores, prompts, texts, tok) for seed in args.seeds]
    result["mean"] = summary(result["runs"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["mean"], indent=2))


if __name__ == "__main__":
    main()
