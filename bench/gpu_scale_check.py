"""GPU check for training at scale (issue 11): run it on any machine with one or more GPUs.

    python3 bench/gpu_scale_check.py [--data ../shared/data] [--size 0.3b] [--out bench/results/gpu_scale_<gpu>.json]
    python3 bench/gpu_scale_check.py --smoke          # a tiny CPU dry run of the script itself

Django-free (rewardmodel.trainer / distributed / testing and replay.datasets only). It builds a random decoder
(Llama architecture, from a config: no download) and trains it as a reward model on HH-RLHF harmless pairs when
--data holds them (else synthetic rankings), after a discarded warm-up run:

1. bf16, full fine-tuning;   2. bf16, LoRA r=16;
3. a 2-process torchrun job (DDP; NCCL with a GPU per process, gloo when two share one GPU);
4. kill-and-resume: the same job, a rank SIGKILLed a third of the way, then run again: it must resume from
   its checkpoint;
5. how close to the hardware (bench/gpu_mfu.py): model FLOPs utilisation of a 0.5B-class decoder at several sequence
   lengths, ours next to TRL's RewardTrainer on the same token ids, each timed run at least --mfu-seconds long after
   its warm-up (TRL is skipped, with the reason in its row, where it cannot be imported).

It prints and writes JSON after every run (a run cut short keeps what it measured): device facts, comparisons/s,
tokens/s, peak GPU memory, final loss, for 4 the step resumed from, for 5 tokens/s, model TFLOP/s and MFU. Commit
the output with the date and the GPU (bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SIZES = {  # (hidden, layers, heads, intermediate)
    "tiny": (32, 2, 2, 64),
    "0.1b": (768, 12, 12, 2048),
    "0.3b": (1024, 24, 16, 2816),
    "0.5b": (1024, 24, 16, 4864),
}


def build(folder: Path, size: str, positions: int = 1024) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from rewardmodel.testing import make_tiny_tokenizer

    hidden, layers, heads, inter = SIZES[size]
    tokenizer = make_tiny_tokenizer(chat=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=inter,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max(1024, positions), num_labels=1,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def rankings(data: Path | None, n: int):
    from rewardmodel.trainer import RankingExample

    if data is not None and (data / "hh-harmless-dev.jsonl").is_file():
        from replay import datasets

        hh = datasets.read_hh(data / "hh-harmless-dev.jsonl")
        out = []
        for w, lo in hh.pairs[:n]:
            (prompt, chosen), (_, rejected) = hh.items[w], hh.items[lo]
            out.append(RankingExample(prompt, [chosen, rejected], [(0, 1)], prompt))
        return out, "hh-harmless"
    from rewardmodel.testing import synthetic_completions

    rng = random.Random(0)
    out = []
    for i in range(n):
        comps = synthetic_completions(rng)
        order = sorted(range(4), key=lambda j: -comps[j][1])
        out.append(RankingExample(f"question {i}?", [c for c, _ in comps],
                                  [(order[a], order[b]) for a in range(4) for b in range(a + 1, 4)], str(i)))
    return out, "synthetic K=4"


def tokens_of(tokenizer, examples, max_length: int) -> int:
    from rewardmodel.encoding import encode_pairs

    enc = encode_pairs(tokenizer, [e.prompt for e in examples for _ in e.completions],
                       [c for e in examples for c in e.completions], max_length)
    return sum(len(f["input_ids"]) for f in enc.features)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--size", choices=sorted(SIZES), default="0.3b")
    ap.add_argument("--rankings", type=int, default=1200)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="tiny model, few rankings, CPU")
    ap.add_argument("--skip-checks", action="store_true", help="only the MFU measurement (5)")
    ap.add_argument("--mfu-size", choices=sorted(SIZES), default="0.5b")
    ap.add_argument("--mfu-lengths", type=int, nargs="*", default=[512, 2048], help="none: skip 5")
    ap.add_argument("--mfu-seconds", type=float, default=60.0)
    ap.add_argument("--mfu-tokens-per-step", type=int, default=32768)
    ap.add_argument("--mfu-trainers", nargs="+", default=["ours", "trl"],
                    choices=["ours", "ours_nondeterministic", "trl"])
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    if args.smoke:
        args.size, args.rankings, args.max_length = "tiny", 160, 128
        args.mfu_size, args.mfu_lengths, args.mfu_seconds, args.mfu_tokens_per_step = "tiny", [64], 2.0, 512
    device = "cuda" if cuda else "cpu"
    facts = {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "cuda": cuda,
             "size": args.size, "max_length": args.max_length}
    if cuda:
        facts |= {"gpu": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(),
                  "bf16": torch.cuda.is_bf16_supported()}
    print(json.dumps(facts), flush=True)
    work = Path(tempfile.mkdtemp(prefix="verdict-gpu-"))
    results = {"facts": facts, "runs": {}}

    def save() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")

    if not args.skip_checks:
        checks(args, work, device, cuda, results, save)
    if args.mfu_lengths and (cuda or args.smoke):
        import gpu_mfu

        mfu_path = build(work / "mfu-decoder", args.mfu_size, positions=max(args.mfu_lengths))
        results["mfu"] = gpu_mfu.measure(str(mfu_path), args.mfu_lengths, args.mfu_seconds,
                                         args.mfu_tokens_per_step, trainers=tuple(args.mfu_trainers),
                                         report=lambda line: print(line, flush=True))
        results["mfu"]["size"] = args.mfu_size
        save()
    print(json.dumps(results, indent=2))


def checks(args, work: Path, device: str, cuda: bool, results: dict, save) -> None:
    """1–4: bf16 full and LoRA, a 2-process torchrun job, kill-and-resume."""
    import torch

    from rewardmodel import distributed, trainer
    from rewardmodel.backbones import load_backbone

    path = build(work / "decoder", args.size)
    examples, source = rankings(args.data, args.rankings)
    _, tokenizer = load_backbone(path)
    n_tokens = tokens_of(tokenizer, examples, args.max_length)
    results |= {"data": source, "rankings": len(examples), "tokens_per_epoch": n_tokens}
    precision = "bf16" if cuda else "fp32"
    base = dict(device=device, max_length=args.max_length, batch_rankings=8, lr=1e-5, precision=precision,
                gradient_checkpointing=False)

    def record(label: str, result, seconds: float, **extra) -> None:
        row = {"seconds": round(seconds, 2), "steps": result.steps,
               "comparisons_per_s": round(result.n_pairs / seconds, 1),
               "tokens_per_s": round(n_tokens / seconds), "final_loss": round(result.losses[-1], 4),
               "peak_memory_gib": round((result.peak_memory_mib or 0) / 1024, 2), "resolved": result.resolved, **extra}
        results["runs"][label] = row
        print(json.dumps({label: row}), flush=True)
        save()

    for label, extra in (("warmup", {}), ("bf16_full", {}), ("bf16_lora16", {"lora_r": 16})):
        model, tok = load_backbone(path)
        began = time.perf_counter()
        result = trainer.train(model, tok, examples, trainer.TrainConfig(**base, **extra))
        if cuda:
            torch.cuda.synchronize()
        if label != "warmup":
            record(label, result, time.perf_counter() - began,
                   trainable_parameters=sum(p.numel() for p in result.model.parameters() if p.requires_grad))
        del model, result
        if cuda:
            torch.cuda.empty_cache()

    config = trainer.TrainConfig(**base)
    began = time.perf_counter()
    result = distributed.run(work / "ddp" / "job", str(path), config, examples, work / "ddp" / "ckpt.pt", 0, 2)
    record("torchrun_2_processes", result, time.perf_counter() - began,
           backend="nccl" if cuda and torch.cuda.device_count() >= 2 else "gloo")

    killed: list[int] = []

    def kill_a_rank(step, total, loss):
        if step >= max(1, total // 3) and not killed:
            import psutil

            for proc in psutil.Process().children(recursive=True):
                line = " ".join(proc.cmdline())
                if "rewardmodel.distributed" in line and "torch.distributed.run" not in line:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed.append(step)
                    return

    folder, checkpoint = work / "kill" / "job", work / "kill" / "ckpt.pt"
    try:
        distributed.run(folder, str(path), config, examples, checkpoint, 1, 2, progress=kill_a_rank, poll_s=0.1)
        outcome = "finished before the kill"
    except distributed.ProcessFailed as failed:
        outcome = f"failed as expected at step {failed.step}/{failed.total}"
    began = time.perf_counter()
    resumed = distributed.run(folder, str(path), config, examples, checkpoint, 1, 2)
    record("kill_and_resume", resumed, time.perf_counter() - began, killed_at=killed, first_attempt=outcome,
           resumed_from=resumed.resumed_from)
    results["resume_ok"] = bool(killed) and resumed.resumed_from >= 1 and resumed.steps > resumed.resumed_from
    save()


if __name__ == "__main__":
    main()
