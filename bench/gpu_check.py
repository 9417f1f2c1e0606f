"""GPU check for the reward-model trainer, run on a CUDA machine:

    python3 bench/gpu_check.py --data DIR --tokenizer DIR [--out FILE]      (--smoke: a tiny CPU dry run)


Django-free: it uses only rewardmodel.trainer / backbones / encoding and replay.datasets, so it runs where PyTorch
and transformers are installed and nothing else. It builds a randomly initialised BERT-base-sized reward model from
a config (no hub download), trains it one epoch on PandaLM's human preferences (grouped by prompt, 20 % of prompts
held out) with CUDA in bf16 autocast and again in fp32, and prints device facts, throughput (comparisons/s) and
held-out accuracy as JSON. It checks the CUDA paths (pick_device, autocast, predict) that CPU CI never reaches.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    if not torch.cuda.is_available():  # --smoke on a CPU machine: the CUDA calls below become no-ops
        torch.cuda.synchronize = torch.cuda.empty_cache = torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
        torch.cuda.max_memory_allocated = lambda *a, **k: 0
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from replay import datasets
    from rewardmodel import trainer
    from rewardmodel.backbones import load_backbone

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny model, 12 rankings, CPU: checks the script itself")
    args = ap.parse_args()
    device = "cpu" if args.smoke else "cuda"

    facts = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        facts |= {"gpu": torch.cuda.get_device_name(0), "bf16": torch.cuda.is_bf16_supported()}
    print(json.dumps(facts), flush=True)
    assert args.smoke or trainer.pick_device().type == "cuda", "no CUDA device"

    data = datasets.load("pandalm", args.data)
    by_prompt: dict[str, trainer.RankingExample] = {}
    for w, lo in data.pairs:
        (pw, cw), (_, cl) = data.items[w], data.items[lo]
        ex = by_prompt.setdefault(pw, trainer.RankingExample(prompt=pw, completions=[], pairs=[], group=pw))
        for text in (cw, cl):
            if text not in ex.completions:
                ex.completions.append(text)
        ex.pairs.append((ex.completions.index(cw), ex.completions.index(cl)))
    examples = list(by_prompt.values())[: 15 if args.smoke else None]
    cut = int(len(examples) * 0.8)
    train_set, held = examples[:cut], examples[cut:]

    path = Path(tempfile.mkdtemp()) / "bert-base-random"
    AutoTokenizer.from_pretrained(str(args.tokenizer), local_files_only=True).save_pretrained(path)
    config = BertConfig(num_labels=1, **({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                          "intermediate_size": 64} if args.smoke else {}))
    BertForSequenceClassification(config).save_pretrained(path)  # safetensors by default

    results = {"facts": facts, "train_rankings": len(train_set), "heldout_rankings": len(held), "runs": {}}
    # The first run pays for CUDA's start-up (context, cuBLAS handles, kernel selection): a warm-up run is discarded.
    for label, bf16 in (("warmup", True), ("bf16", True), ("fp32", False)):
        model, tokenizer = load_backbone(path)
        model.to(device)
        torch.cuda.synchronize()
        t0 = time.time()
        precision = ("bf16" if bf16 else "fp32") if device == "cuda" else "fp32"
        res = trainer.train(model, tokenizer, train_set, trainer.TrainConfig(epochs=args.epochs, device=device,
                                                                              batch_rankings=16, precision=precision))
        torch.cuda.synchronize()
        seconds = time.time() - t0
        prompts = [e.prompt for e in held for _ in e.completions]
        texts = [c for e in held for c in e.completions]
        rewards, _ = trainer.predict(model, tokenizer, prompts, texts, device=torch.device(device))
        correct = total = 0
        offset = 0
        for e in held:
            r = rewards[offset:offset + len(e.completions)]
            offset += len(e.completions)
            for w, lo in e.pairs:
                correct += float(r[w] > r[lo]) + 0.5 * float(r[w] == r[lo])
                total += 1
        if label == "warmup":
            del model
            continue
        results["runs"][label] = {
            "seconds": round(seconds, 2), "pairs": res.n_pairs, "steps": res.steps, "device": res.device,
            "comparisons_per_s": round(res.n_pairs / seconds, 1), "final_loss": round(res.losses[-1], 4),
            "heldout_accuracy": round(correct / total, 4), "heldout_pairs": total,
            "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        }
        print(json.dumps({label: results["runs"][label]}), flush=True)
        del model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    b, f = results["runs"]["bf16"], results["runs"]["fp32"]
    results["bf16_speedup"] = round(b["comparisons_per_s"] / f["comparisons_per_s"], 2)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
