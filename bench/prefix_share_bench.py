"""Prefix sharing (issue 25, item 2) on CPU: our trainer with the prompt shared (TrainConfig.share_prompt, the
default) and unshared, and TRL's RewardTrainer, on a small random Llama-architecture decoder, K=2 and K=4.

    .venv/bin/python bench/prefix_share_bench.py [--threads 2] [--rankings-k2 64] [--rankings-k4 24]

Synthetic rankings whose prompts are about three times longer than their completions (about 96 and 32 tokens), so
the prompt is most of what a ranking costs; a learnable signal (rewardmodel.testing's good and bad phrases) gives a
held-out accuracy as a sanity check. Each training runs in a fresh process (bench/scale_bench.py's helper), with the
same texts, lr and schedule; ours with scale_bench's batches (16 rankings at K=2, 3 at K=4), TRL with 16 pairs and
gradient checkpointing off. The runs are short and a shared CPU is noisy: each is repeated (--repeats, interleaved
round by round) and the ratios use the median time. Prints one JSON line per run and the ratios; --out writes them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_bench import in_fresh_process  # noqa: E402

FILLER = "the of is and to in what why how please explain answer question".split()


def synthetic(k: int, n: int, seed: int, prompt_words: int, completion_words: int):
    from rewardmodel.examples import RankingExample
    from rewardmodel.testing import synthetic_completions

    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = f"{i} " + " ".join(rng.choice(FILLER) for _ in range(prompt_words))
        comps = sorted(synthetic_completions(rng, k), key=lambda c: -c[1])
        texts = [f"{text} " + " ".join(rng.choice(FILLER) for _ in range(max(0, completion_words - len(text.split()))))
                 for text, _ in comps]
        out.append(RankingExample(prompt, texts, [(a, b) for a in range(k) for b in range(a + 1, k)], str(i)))
    return out


def one_run(job: dict) -> dict:
    import torch
    import train_vs_trl as base

    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import TrainConfig, predict, train

    torch.set_num_threads(job["threads"])
    train_set = synthetic(job["k"], job["rankings"], job["seed"], job["prompt_words"], job["completion_words"])
    held = synthetic(job["k"], job["held"], job["seed"] + 1, job["prompt_words"], job["completion_words"])
    _, tok = load_backbone(job["backbone"])
    sizes = {"prompt_tokens": sum(len(tok(e.prompt)["input_ids"]) for e in train_set) / len(train_set),
             "completion_tokens": sum(len(tok(c)["input_ids"]) for e in train_set for c in e.completions) / sum(
                 len(e.completions) for e in train_set)}
    n_pairs = sum(len(e.pairs) for e in train_set)
    if job["trainer"] == "trl":
        args = argparse.Namespace(backbone=job["backbone"], trl_batch_pairs=16, lr=job["lr"], seed=job["seed"],
                                  device="cpu", max_length=job["max_length"], gradient_checkpointing=False)
        out = base.run_trl(train_set, held, args)
        seconds, acc = out["seconds"], out["heldout_accuracy"]
    else:
        model, tok = load_backbone(job["backbone"])
        config = TrainConfig(lr=job["lr"], batch_rankings=job["batch_rankings"], max_length=job["max_length"],
                             seed=job["seed"], device="cpu", center_coef=0.0, gradient_checkpointing=False,
                             share_prompt=job["trainer"] == "ours (shared)")
        result = train(model, tok, train_set, config)
        assert result.resolved["share_prompt"] == config.share_prompt and result.truncated == 0
        seconds = result.seconds
        acc = base.heldout_accuracy(lambda p, c: predict(model, tok, p, c, job["max_length"])[0].numpy(), held)
    return {"trainer": job["trainer"], "k": job["k"], "rankings": len(train_set), "pairs": n_pairs, **sizes,
            "seconds": round(seconds, 2), "pairs_per_second": round(n_pairs / seconds, 2),
            "heldout_accuracy": round(float(acc), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rankings-k2", type=int, default=64)
    ap.add_argument("--rankings-k4", type=int, default=24)
    ap.add_argument("--held", type=int, default=24)
    ap.add_argument("--prompt-words", type=int, default=90)
    ap.add_argument("--completion-words", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-trl", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from rewardmodel.testing import make_tiny_decoder

    decoder = make_tiny_decoder(Path(tempfile.mkdtemp(prefix="verdict-prefix-")) / "decoder", "llama", hidden=256,
                                layers=4, positions=512)
    trainers = ["ours (shared)", "ours (unshared)"] + ([] if args.no_trl else ["trl"])
    runs = []
    for k, n, batch in ((2, args.rankings_k2, 16), (4, args.rankings_k4, 3)):
        for repeat, trainer in [(r, t) for r in range(args.repeats) for t in trainers]:
            job = {"trainer": trainer, "k": k, "rankings": n, "held": args.held, "seed": args.seed,
                   "threads": args.threads, "backbone": str(decoder), "lr": 1e-3, "max_length": 512,
                   "batch_rankings": batch, "prompt_words": args.prompt_words,
                   "completion_words": args.completion_words}
            began = time.perf_counter()
            row = in_fresh_process(one_run, job)
            row["wall_seconds"], row["repeat"] = round(time.perf_counter() - began, 1), repeat
            runs.append(row)
            print(json.dumps(row), flush=True)
    ratios = []
    for k in (2, 4):
        by = {t: statistics.median(r["pairs_per_second"] for r in runs if r["k"] == k and r["trainer"] == t)
              for t in trainers}
        ratios.append({"k": k, "shared_over_unshared": round(by["ours (shared)"] / by["ours (unshared)"], 2),
                       **({} if args.no_trl else {"shared_over_trl": round(by["ours (shared)"] / by["trl"], 2),
                                                  "unshared_over_trl": round(by["ours (unshared)"] / by["trl"], 2)})})
    print(json.dumps(ratios, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": args.threads,
                                        "decoder": "random Llama-architecture, hidden 256, 4 layers",
                                        "runs": runs, "ratios": ratios}, indent=2) + "\n")


if __name__ == "__main__":
    main()
