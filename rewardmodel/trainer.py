"""A Bradley–Terry reward-model trainer: one forward pass per completion, loss averaged over all pairs of a ranking.

Pure torch + transformers (no Django), so the benchmark and the Celery task share it. Batches hold whole rankings,
bucketed by length; the loss of a ranking is mean over its pairs of −log σ(r_w − r_l − margin) (InstructGPT),
plus an optional reward-centring term λ·mean(r²) that keeps rewards near zero.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from rewardmodel import readout
from rewardmodel.encoding import encode_pairs


@dataclass
class RankingExample:
    prompt: str
    completions: list[str]
    pairs: list[tuple[int, int]]  # (winner index, loser index) into completions
    group: str = ""  # prompt key, used to split held-out by prompt
    weight: float = 1.0  # the ranking's share in the loss: its rater's reliability (quality), 1 by default


@dataclass
class TrainConfig:
    epochs: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    batch_rankings: int = 8  # rankings per optimiser step (each contributes K forwards)
    max_length: int = 256
    # Which end of a completion survives when it alone is longer than max_length (rewardmodel.encoding); the prompt
    # always loses its start first.
    keep: str = "end"
    chat_template: str = ""  # a Jinja chat template for decoder backbones; blank: the tokenizer's own
    margin: float = 0.0
    center_coef: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    bucket_chunk: int = 50  # sort by length within chunks of this many batches
    num_threads: int = 0  # 0: leave torch's default
    device: str = "auto"  # auto → cuda when available, else cpu
    holdout_fraction: float = 0.2
    # The held-out split's own seed, apart from `seed`: every version of a project, whatever its training seed, is
    # then judged on the same held-out prompts, which none of them trained on (the promotion gate relies on it).
    split_seed: int = 0
    disable_dropout: bool = True  # dropout adds noise to reward differences; TRL's RewardConfig turns it off too

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainConfig:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    n_rankings: int = 0
    n_pairs: int = 0
    n_forwards: int = 0
    truncated: int = 0  # completions whose text was cut to fit max_length (never dropped)
    completions_cut: int = 0  # of those, how many lost part of the completion itself, not only prompt
    seconds: float = 0.0
    device: str = "cpu"
    resumed_from: int = 0  # the step a resumed run started from (0: from scratch)


def pick_device(name: str = "auto") -> torch.device:
    """CUDA is looked at only here, i.e. inside the training task, never at import time."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _batches(lengths: list[int], batch_size: int, chunk: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort by length within chunks (less padding), cut into batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = max(1, batch_size * chunk)
    batches = []
    for start in range(0, len(order), span):
        block = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def collate(tokenizer, features: list[dict[str, list[int]]], device: torch.device) -> dict[str, torch.Tensor]:
    batch = tokenizer.pad({k: [f[k] for f in features] for k in features[0]}, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def ranking_loss(rewards: torch.Tensor, pair_index: torch.Tensor, pair_owner: torch.Tensor, n_rankings: int,
                 margin: float, center_coef: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean over rankings of (mean over the ranking's pairs of −log σ(r_w − r_l − margin)), + λ·mean(r²).

    `weights` (one per ranking, default all 1) say how much each ranking counts, e.g. its rater's reliability.
    """
    diff = rewards[pair_index[:, 0]] - rewards[pair_index[:, 1]] - margin
    per_pair = -torch.nn.functional.logsigmoid(diff)
    sums = torch.zeros(n_rankings, device=rewards.device, dtype=per_pair.dtype).index_add(0, pair_owner, per_pair)
    counts = torch.zeros(n_rankings, device=rewards.device, dtype=per_pair.dtype).index_add(
        0, pair_owner, torch.ones_like(per_pair))
    per_ranking = sums / counts.clamp(min=1)
    if weights is None:
        loss = per_ranking.mean()
    else:
        weights = weights.to(per_ranking.dtype)
        loss = (per_ranking * weights).sum() / weights.sum().clamp(min=1e-12)
    if center_coef:
        loss = loss + center_coef * rewards.pow(2).mean()
    return loss


def switch_off_dropout(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def set_seed(seed: int) -> None:
    """Python's, numpy's and torch's generators (every CUDA device's included)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary because should_stop() said so; its state went to checkpoint()."""

    def __init__(self, step: int, total: int):
        super().__init__(f"interrupted at step {step}/{total}")
        self.step, self.total = step, total


def train(model, tokenizer, examples: list[RankingExample], config: TrainConfig,
          progress: Callable[[int, int, float], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          checkpoint: Callable[[dict], None] | None = None,
          resume: dict | None = None) -> TrainResult:
    """Train `model` in place on rankings; `progress(step, total, loss)` is called after every optimiser step.

    After a step, when `should_stop()` holds, the state (model, optimiser, schedule, losses, step) goes to
    `checkpoint(state)` and TrainingInterrupted is raised. `resume=state` continues such a run: the batch plan is
    the same (same seed), so it skips the steps already taken and goes on with the saved weights and optimiser.
    """
    examples = [e for e in examples if e.pairs and e.weight > 0]
    if not examples:
        raise ValueError("no ranking with at least one pair and a weight above 0 to train on")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    set_seed(config.seed)
    device = pick_device(config.device)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    model.to(device)
    if config.disable_dropout:
        switch_off_dropout(model)
    model.train()

    # Tokenize every completion once, up front.
    flat_prompts = [e.prompt for e in examples for _ in e.completions]
    flat_completions = [c for e in examples for c in e.completions]
    encoded = encode_pairs(tokenizer, flat_prompts, flat_completions, config.max_length, config.keep)
    offsets, start = [], 0
    for e in examples:
        offsets.append(start)
        start += len(e.completions)
    lengths = [max(len(encoded.features[offsets[i] + j]["input_ids"]) for j in range(len(e.completions)))
               for i, e in enumerate(examples)]

    rng = random.Random(config.seed)
    plan = [_batches(lengths, config.batch_rankings, config.bucket_chunk, rng) for _ in range(config.epochs)]
    total = sum(len(p) for p in plan)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    warmup = int(total * config.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    result = TrainResult(n_rankings=len(examples), n_pairs=sum(len(e.pairs) for e in examples) * config.epochs,
                         truncated=encoded.truncated, completions_cut=encoded.completions_cut, device=str(device))
    began = time.perf_counter()
    step = 0
    if resume is not None:
        if resume.get("total") != total:
            raise ValueError(f"checkpoint is for {resume.get('total')} steps, this plan has {total}")
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        step, result.losses = int(resume["step"]), list(resume["losses"])
        result.resumed_from = step
    done = step
    for epoch_plan in plan:
        for batch in epoch_plan:
            if done:  # taken before the checkpoint
                done -= 1
                continue
            features, pair_index, pair_owner = [], [], []
            for owner, i in enumerate(batch):
                base = len(features)
                e = examples[i]
                features.extend(encoded.features[offsets[i] + j] for j in range(len(e.completions)))
                pair_index.extend((base + w, base + lo) for w, lo in e.pairs)
                pair_owner.extend([owner] * len(e.pairs))
            inputs = collate(tokenizer, features, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                rewards = readout.rewards(model, inputs)
            weights = [examples[i].weight for i in batch]
            loss = ranking_loss(rewards, torch.tensor(pair_index, device=device),
                                torch.tensor(pair_owner, device=device), len(batch), config.margin, config.center_coef,
                                None if all(w == 1.0 for w in weights) else torch.tensor(weights, device=device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at step {step}")
            result.losses.append(value)
            result.n_forwards += len(features)
            if progress:
                progress(step, total, value)
            if should_stop is not None and step < total and should_stop():
                if checkpoint is not None:
                    checkpoint({"step": step, "total": total, "losses": list(result.losses),
                                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
                raise TrainingInterrupted(step, total)
    result.steps = step
    result.seconds = time.perf_counter() - began
    model.eval()
    return result


@torch.no_grad()
def predict(model, tokenizer, prompts: list[str], completions: list[str], max_length: int = 256,
            batch_size: int = 64, device: torch.device | None = None, keep: str = "end") -> tuple[torch.Tensor, int]:
    """Rewards for text pairs (float32 on CPU) and how many were truncated; batches sorted by length.

    Always in fp32, also on GPUs: evaluation compares close rewards (ties, flips between versions), which bf16's
    8 bits of mantissa would blur.
    """
    device = device or next(model.parameters()).device
    encoded = encode_pairs(tokenizer, prompts, completions, max_length, keep)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded.features[i]["input_ids"]))
    out = torch.empty(len(prompts), dtype=torch.float32)
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        inputs = collate(tokenizer, [encoded.features[i] for i in idx], device)
        out[torch.tensor(idx)] = readout.rewards(model, inputs).cpu()
    if was_training:
        model.train()
    return out, encoded.truncated
