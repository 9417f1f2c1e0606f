"""How close to the hardware: model FLOPs utilisation (MFU) of reward-model training, ours and TRL's, on one GPU.

Used by bench/gpu_scale_check.py (`make gpu-check`); Django-free. For each sequence length it trains the same random
0.5B-class Llama-architecture decoder (no download) on the same token ids, once with Verdict's trainer and once with
TRL's RewardTrainer (bf16 autocast, gradient checkpointing off, dropout off, equal tokens per optimiser step):

- a short calibration run (also the warm-up: kernels, allocator, cuBLAS heuristics) gives the step time;
- the timed run is sized from it to last at least `seconds` after its first `warm_steps` steps, which are not timed;
- every sequence is exactly `length` tokens (texts longer than that, cut by our encoder; TRL gets the very same ids
  pre-tokenised), so tokens per second need no padding correction.

MFU = achieved model FLOP/s ÷ the GPU's dense bf16 peak. Model FLOPs per trained token follow PaLM (Chowdhery et
al. 2022, appendix B): 6·N + 12·layers·hidden·length, N the parameters outside the embedding table (a reward model
has no vocabulary projection), the attention term without halving for the causal mask. It is also given against
the matrix-product rate measured on the same GPU in the same run (a bf16 8192³ product), the practical ceiling.
"""

from __future__ import annotations

import json
import math
import random
import time

# Dense bf16 tensor-core peaks (no sparsity) from NVIDIA's data sheets, by a substring of the device name.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.4,
                    "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.2}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def measured_matmul_tflops(repeats: int = 10) -> float:
    """bf16 8192³ matrix products, mean of `repeats` after three warm-ups: what the GPU gives a plain GEMM."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / repeats
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 / seconds / 1e12


def flops_per_token(model, length: int) -> tuple[float, int]:
    """(training FLOPs per token, non-embedding parameters) of a decoder reward model at this sequence length."""
    config = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    return 6 * n + 12 * config.num_hidden_layers * config.hidden_size * length, n


def rankings_of_length(tokenizer, count: int, length: int, seed: int = 0):
    """`count` K=2 rankings whose every (prompt, completion) encodes to exactly `length` tokens, and those ids."""
    from rewardmodel.encoding import encode_pairs
    from rewardmodel.trainer import RankingExample

    words = ("the answer is a clear and careful explanation of what was asked why how please explain question "
             "because first second then finally however").split()
    rng = random.Random(seed)

    def text(n_words: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n_words))

    # ~1 token per word or more with the tiny BPE: `length` words each side always overflows, and the encoder cuts.
    examples = [RankingExample(text(length // 2), [text(length), text(length)], [(0, 1)], str(i))
                for i in range(count)]
    enc = encode_pairs(tokenizer, [e.prompt for e in examples for _ in e.completions],
                       [c for e in examples for c in e.completions], length)
    ids = [f["input_ids"] for f in enc.features]
    if any(len(x) != length for x in ids):
        raise RuntimeError(f"texts did not fill {length} tokens: {sorted({len(x) for x in ids})[:5]}")
    return examples, ids


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _reset_peak() -> None:
    import torch

    if _cuda():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float:
    import torch

    if _cuda():
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30
    return 0.0


def _timed_ours(path: str, examples: list, length: int, batch_rankings: int, warm_steps: int,
                deterministic: bool = True) -> dict:

    from rewardmodel.backbones import load_backbone
    from rewardmodel.trainer import TrainConfig, train

    model, tok = load_backbone(path)
    stamps: list[float] = []

    def progress(step, total, loss):
        stamps.append(time.perf_counter())

    _reset_peak()
    config = TrainConfig(device="cuda" if _cuda() else "cpu", max_length=length, batch_rankings=batch_rankings,
                         lr=1e-5, precision="bf16" if _cuda() else "fp32", gradient_checkpointing=False, lora_r=0,
                         warmup_ratio=0.0, deterministic=deterministic)
    result = train(model, tok, examples, config, progress=progress)
    peak = _peak_gib()
    end = time.perf_counter()
    del model, result
    return {"stamps": stamps, "end": end, "peak_memory_gib": peak}


def _timed_trl(path: str, ids: list[list[int]], length: int, batch_pairs: int, warm_steps: int) -> dict:
    import tempfile

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rewardmodel.backbones import load_backbone

    model, tok = load_backbone(path)
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    rows = [{"chosen_ids": ids[i], "rejected_ids": ids[i + 1]} for i in range(0, len(ids), 2)]
    _reset_peak()
    with tempfile.TemporaryDirectory() as out:
        config = RewardConfig(output_dir=out, per_device_train_batch_size=batch_pairs, num_train_epochs=1,
                              learning_rate=1e-5, lr_scheduler_type="linear", save_strategy="no", report_to="none",
                              logging_steps=50, max_length=None, bf16=_cuda(), use_cpu=not _cuda(),
                              dataloader_num_workers=0,
                              disable_dropout=True, gradient_checkpointing=False)
        trainer = RewardTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok,
                                callbacks=[Stamp()])
        trainer.train()
        peak = _peak_gib()
        end = time.perf_counter()
    del model, trainer
    return {"stamps": stamps, "end": end, "peak_memory_gib": peak}


def _rate(timed: dict, warm_steps: int, tokens_per_step: int) -> tuple[float, float, int]:
    """(timed seconds, tokens/s, timed steps): from the end of step `warm_steps` to the end of the run."""
    stamps = timed["stamps"]
    steps = len(stamps) - warm_steps
    seconds = timed["end"] - stamps[warm_steps - 1]
    return seconds, steps * tokens_per_step / seconds, steps


def measure(path: str, lengths: list[int], seconds: float, tokens_per_step: int, warm_steps: int = 5,
            calibration_steps: int = 8, trainers: tuple[str, ...] = ("ours", "trl"), report=print) -> dict:
    """MFU rows for each (length, trainer), each timed run at least `seconds` long after its warm-up."""
    import torch

    from rewardmodel.backbones import load_backbone

    name = torch.cuda.get_device_name(0) if _cuda() else "cpu"
    peak = peak_tflops(name)
    gemm = measured_matmul_tflops() if _cuda() else float("nan")
    model, tok = load_backbone(path)
    out = {"gpu": name, "peak_bf16_tflops": peak, "measured_matmul_tflops": round(gemm, 1) if gemm == gemm else None,
           "flops_convention": "PaLM: 6N + 12·layers·hidden·length per token, N without embeddings",
           "tokens_per_step": tokens_per_step, "timed_seconds_at_least": seconds, "runs": []}
    for length in lengths:
        per_token, n_params = flops_per_token(model, length)
        pairs_per_step = max(1, tokens_per_step // (2 * length))
        step_tokens = pairs_per_step * 2 * length
        for trainer in trainers:
            def run(n_steps: int, trainer=trainer, length=length, pairs_per_step=pairs_per_step) -> dict:
                examples, ids = rankings_of_length(tok, n_steps * pairs_per_step, length, seed=n_steps)
                if trainer.startswith("ours"):  # "ours_nondeterministic": deterministic kernels off
                    return _timed_ours(path, examples, length, pairs_per_step, warm_steps,
                                       deterministic=trainer == "ours")
                return _timed_trl(path, ids, length, pairs_per_step, warm_steps)

            try:
                calibration = run(calibration_steps)
                _, cal_rate, _ = _rate(calibration, 3, step_tokens)
                step_s = step_tokens / cal_rate
                n_steps = warm_steps + math.ceil(seconds / step_s)
                timed = run(n_steps)
                span, rate, steps = _rate(timed, warm_steps, step_tokens)
            except Exception as error:  # TRL missing or failing on this machine: the row says why, ours still runs
                row = {"length": length, "trainer": trainer, "error": f"{type(error).__name__}: {error}"[:500]}
            else:
                achieved = rate * per_token / 1e12
                row = {"length": length, "trainer": trainer, "pairs_per_step": pairs_per_step,
                       "tokens_per_step": step_tokens, "steps_timed": steps, "seconds_timed": round(span, 1),
                       "tokens_per_s": round(rate), "comparisons_per_s": round(rate / (2 * length), 1),
                       "model_tflops": round(achieved, 1),
                       "mfu": round(achieved / peak, 4) if peak else None,
                       "of_measured_matmul": round(achieved / gemm, 4) if gemm == gemm else None,
                       "peak_memory_gib": round(timed["peak_memory_gib"], 2),
                       "non_embedding_parameters": n_params, "flops_per_token": per_token}
            if _cuda():
                torch.cuda.empty_cache()
            out["runs"].append(row)
            report(json.dumps({"mfu": row}))
    for length in lengths:
        ours = next((r for r in out["runs"] if r["length"] == length and r["trainer"] == "ours"), {})
        trl = next((r for r in out["runs"] if r["length"] == length and r["trainer"] == "trl"), {})
        if ours.get("tokens_per_s") and trl.get("tokens_per_s"):
            out.setdefault("speedup_vs_trl", {})[str(length)] = round(ours["tokens_per_s"] / trl["tokens_per_s"], 3)
    return out
