"""A Bradley–Terry reward-model trainer: one forward pass per completion, loss averaged over all pairs of a ranking.

Pure torch + transformers (no Django), so the benchmark and the Celery task share it. Batches hold whole rankings,
bucketed by length; the loss of a ranking is mean over its pairs of −log σ(r_w − r_l − margin) (InstructGPT),
plus an optional reward-centring term λ·mean(r²) that keeps rewards near zero.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from rewardmodel import batching, prefix_sharing, readout
from rewardmodel.encoding import TooManyTokens, encode_pairs
from rewardmodel.examples import RankingExample


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
    # Memory and speed (rewardmodel.memory settles "auto"/None from the backbone's size and the device's memory).
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (CUDA only; fp16 with a gradient scaler)
    gradient_checkpointing: bool | None = None  # None: on for big backbones on a GPU
    grad_accum: int = 1  # batches per optimiser step
    lora_r: int | None = 0  # LoRA rank through peft; 0: full fine-tuning; None: LoRA when full does not fit the GPU
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"  # peft's target_modules: "all-linear" or comma-separated module names
    deterministic: bool = True  # torch's deterministic algorithms where the device has them (warns where not)
    # Across processes (rewardmodel.distributed): "ddp" keeps a whole model per process; "fsdp" shards weights,
    # gradients and optimiser state over the processes (PyTorch FSDP2), for full models that do not fit one GPU.
    sharding: str = "ddp"
    # Decoders: run a ranking's shared prompt once for its K completions, packed in one row with a 4D attention mask
    # (rewardmodel.prefix_sharing): the same rewards, the prompt's cost paid once. No effect on encoders, whose prompt
    # attends to the completion, nor where the attention takes no custom mask (flash-attention 2, windows < max_length).
    share_prompt: bool = True

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainConfig:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**data).checked()

    def checked(self) -> TrainConfig:
        """Refuse values that would only fail (or silently do something else) deep inside training, and values past
        the bounds (BOUNDS, TEXT_BOUNDS; SECURITY.md) that would let one project hold the shared gpu queue."""
        from rewardmodel.encoding import KEEP
        from rewardmodel.memory import PRECISIONS

        problems = _type_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        if self.keep not in KEEP:
            problems.append(f"keep must be one of {KEEP}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}")
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                problems.append(f"{name} must be from {low:g} to {high:g}, got {value!r}")
        for name, longest in TEXT_BOUNDS.items():
            if len(getattr(self, name)) > longest:
                problems.append(f"{name} must be at most {longest:,} characters")
        if not DEVICE.fullmatch(self.device):
            problems.append("device must be auto, cpu or cuda[:N]")
        if not LORA_TARGETS.fullmatch(self.lora_targets):
            problems.append("lora_targets must be all-linear or comma-separated module names")
        if self.sharding not in ("ddp", "fsdp"):
            problems.append("sharding must be ddp or fsdp")
        elif self.sharding == "fsdp" and self.lora_r != 0:
            problems.append("sharding fsdp is for full fine-tuning (lora_r 0); LoRA's few weights train with ddp")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_dict(self) -> dict:
        return asdict(self)


# What one training may ask of the shared gpu queue, per field (SECURITY.md lists them): a scheduled retrain inside
# these ends within the task's time limit on any backbone Verdict trains. lora_r's 0 is "off"; None (auto) passes.
BOUNDS = {
    "epochs": (1, 20), "lr": (1e-8, 1.0), "weight_decay": (0.0, 1.0), "warmup_ratio": (0.0, 0.5),
    "batch_rankings": (1, 256), "max_length": (4, 8192), "margin": (0.0, 10.0), "center_coef": (0.0, 1.0),
    "max_grad_norm": (0.0, 100.0), "seed": (0, 2**31 - 1), "bucket_chunk": (1, 1000), "num_threads": (0, 256),
    "holdout_fraction": (0.0, 0.5), "split_seed": (0, 2**31 - 1), "grad_accum": (1, 64), "lora_r": (0, 256),
    "lora_alpha": (1, 1024), "lora_dropout": (0.0, 0.5),
}
TEXT_BOUNDS = {"chat_template": 20_000, "lora_targets": 500, "device": 16}
# Settings that choose code or hardware: a template is Jinja run on the workers, device and threads pick their
# processors. Only staff set them (rewardmodel.api); otherwise the worker chooses (auto, all threads, the backbone's
# own template).
STAFF_ONLY = ("device", "chat_template", "num_threads")
DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,2})?")
LORA_TARGETS = re.compile(r"all-linear|[A-Za-z0-9_.]+(\s*,\s*[A-Za-z0-9_.]+)*")
_KINDS = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def _type_problems(config: TrainConfig) -> list[str]:
    """Each field's value has its declared type (JSON gives "5" as easily as 5; True is not an epoch count)."""
    import typing

    hints = typing.get_type_hints(TrainConfig)
    problems = []
    for name, hint in hints.items():
        value = getattr(config, name)
        options = typing.get_args(hint) or (hint,)
        if value is None and type(None) in options:
            continue
        allowed = tuple(k for option in options for k in _KINDS.get(option, ()))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in options):
            wanted = " or ".join(getattr(o, "__name__", str(o)).replace("NoneType", "null") for o in options)
            problems.append(f"{name} must be {wanted}, got {value!r}")
    return problems


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
    # the memory plan this run used (rewardmodel.memory), and whether it shared prompts (rewardmodel.prefix_sharing)
    resolved: dict = field(default_factory=dict)
    peak_memory_mib: float | None = None  # CUDA only
    model: object = None  # the trained module: the model given, or its PEFT wrapper when LoRA is on
    full_weights: dict | None = None  # sharded (FSDP) runs: the trained weights, gathered whole at the end
    # [step, mean train loss since the previous point, held-out accuracy] at curve_steps(total): the held-out curve
    curve: list[list] = field(default_factory=list)


CURVE_POINTS = 20


def curve_steps(total: int, points: int = CURVE_POINTS) -> set[int]:
    """The steps where a run measures its held-out curve: `points` evenly spaced ones ending at the last step (every
    step of a shorter run), so a run pays for at most `points` held-out evaluations however long it is."""
    if total <= 0 or points <= 0:
        return set()
    return {math.ceil(total * i / points) for i in range(1, points + 1)} | {total}


def pick_device(name: str = "auto") -> torch.device:
    """CUDA is looked at only here, i.e. inside the training task, never at import time."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name} does not exist on this worker ({torch.cuda.device_count()} GPU(s)); "
                         "leave device to the worker (auto)")
    return device


def collate(tokenizer, features: list[dict[str, list[int]]], device: torch.device) -> dict[str, torch.Tensor]:
    batch = tokenizer.pad({k: [f[k] for f in features] for k in features[0]}, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def ranking_loss(rewards: torch.Tensor, pair_index: torch.Tensor, pair_owner: torch.Tensor, n_rankings: int,
                 margin: float, center_coef: float, weights: torch.Tensor | None = None,
                 total_weight: float | None = None, total_rewards: int | None = None) -> torch.Tensor:
    """Weighted mean over rankings of (mean over the ranking's pairs of −log σ(r_w − r_l − margin)), + λ·mean(r²).

    `weights` (one per ranking, default all 1) say how much each ranking counts, e.g. its rater's reliability.
    `total_weight`/`total_rewards` (default: this batch's) divide the sums instead: a process of a distributed job
    holds a shard of the batch, and its share of the whole batch's loss is its sums over the whole batch's totals.
    """
    diff = rewards[pair_index[:, 0]] - rewards[pair_index[:, 1]] - margin
    per_pair = -torch.nn.functional.logsigmoid(diff)
    # Sum per ranking through a (rankings × pairs) one-hot product: index_add's atomics are nondeterministic on CUDA.
    owner = (pair_owner.unsqueeze(0) == torch.arange(n_rankings, device=rewards.device).unsqueeze(1)).to(per_pair.dtype)
    per_ranking = (owner @ per_pair) / owner.sum(1).clamp(min=1)
    weights = torch.ones_like(per_ranking) if weights is None else weights.to(per_ranking.dtype)
    denominator = weights.sum() if total_weight is None else torch.tensor(total_weight, device=rewards.device)
    loss = (per_ranking * weights).sum() / denominator.clamp(min=1e-12)
    if center_coef:
        loss = loss + center_coef * rewards.pow(2).sum() / (total_rewards or rewards.numel())
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


def use_deterministic_algorithms(device: torch.device) -> None:
    """Deterministic kernels where torch has them; where it has none, torch warns instead of failing the run."""
    import os

    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def prepare_model(model, config: TrainConfig, device: torch.device):
    """(module to train, memory plan): the plan settled, checkpointing on if planned, LoRA adapters if planned."""
    from rewardmodel import memory

    n_params = sum(p.numel() for p in model.parameters())
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    chosen = memory.plan(n_params, device.type, memory.device_memory(device), bf16, config.precision,
                         config.gradient_checkpointing, config.lora_r)
    if chosen.gradient_checkpointing:
        # transformers 5 renamed it (the old name warns); 4.x has only the old one.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if chosen.lora_r:
        from peft import LoraConfig, TaskType, get_peft_model

        targets = config.lora_targets if config.lora_targets == "all-linear" else [
            t.strip() for t in config.lora_targets.split(",") if t.strip()]
        # SEQ_CLS keeps the new reward head (classifier/score) fully trainable and saves it with the adapters.
        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=chosen.lora_r,
                                                 lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                                 target_modules=targets))
    return model, chosen


def save_checkpoint(state: dict, path) -> None:
    """Write a training state; a half-written file never replaces a whole one."""
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def load_checkpoint(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only: no pickles


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary because should_stop() said so; its state went to checkpoint()."""

    def __init__(self, step: int, total: int):
        super().__init__(f"interrupted at step {step}/{total}")
        self.step, self.total = step, total


def shard(reader) -> None:
    """FSDP2 over a RewardReader: each repeated block (transformer layer) is its own shard group, the rest the root's.

    The reader is the root, so its forward (the reward read) gathers the root's weights, whatever submodules the
    read calls."""
    from torch.distributed.fsdp import fully_shard

    for layers in [m for m in reader.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1]:
        for layer in layers:
            fully_shard(layer)
    fully_shard(reader)


def full_state(reader, optimizer) -> tuple[dict, dict]:
    """(weights, optimiser state) of a sharded reader, whole and on CPU, weights named as in the unsharded model."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    weights, optimiser = get_state_dict(reader, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k.removeprefix("model."): v for k, v in weights.items()}, optimiser


def _trainable_state(model) -> dict[str, torch.Tensor]:
    """What a checkpoint must hold: every trainable tensor (with LoRA, only the adapters and the head)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k in names}


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rewardmodel.distributed): the process group is already set up."""

    rank: int
    world: int
    local_rank: int


def train(model, tokenizer, examples: Sequence[RankingExample], config: TrainConfig,
          progress: Callable[[int, int, float], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          checkpoint: Callable[[dict], None] | None = None,
          resume: dict | None = None,
          checkpoint_every: int = 0,
          dist: Distributed | None = None,
          checkpoint_every_s: float = 0,
          heldout_accuracy: Callable[[object], float | None] | None = None,
          on_curve: Callable[[list], None] | None = None,
          curve_points: int = CURVE_POINTS) -> TrainResult:
    """Train `model` on rankings; `progress(step, total, loss)` is called after every optimiser step.

    The trained module is ``result.model``: `model` itself, trained in place, or with LoRA its PEFT wrapper.
    Every `checkpoint_every` steps and every `checkpoint_every_s` seconds (0: never; by time as well as by step, so
    that a slow run does not lose an hour to a lost worker), and after a step where `should_stop()` holds, the state
    (trainable weights, optimiser, schedule, losses, step) goes to `checkpoint(state)`; in the last case
    TrainingInterrupted is raised. `resume=state` continues such a run: the batch plan is the same (same seed), so
    it skips the steps already taken and goes on with the saved weights and optimiser.

    With `dist`, every process plans the same batches and takes its share of each (rankings rank, rank + world, …);
    DDP averages the gradients, and each share's loss is scaled so the step is the single-process step.

    With `heldout_accuracy(model)` (single-process runs), at curve_steps(total, curve_points) the run appends
    [step, mean loss since the previous point, held-out accuracy] to ``result.curve`` and hands the whole curve to
    `on_curve(curve)`; the curve is part of the checkpoint, so a resumed run goes on with it.
    """
    with torch_globals_restored():
        return _train(model, tokenizer, examples, config, progress, should_stop, checkpoint, resume, checkpoint_every,
                      dist, checkpoint_every_s, heldout_accuracy, on_curve, curve_points)


@contextlib.contextmanager
def torch_globals_restored():
    """Training sets torch's thread count and deterministic mode for itself; the caller's (a web process, the test
    suite, a notebook) come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _train(model, tokenizer, examples: Sequence[RankingExample], config: TrainConfig, progress, should_stop, checkpoint,
           resume, checkpoint_every, dist, checkpoint_every_s=0, heldout_accuracy=None, on_curve=None,
           curve_points=CURVE_POINTS) -> TrainResult:
    config.checked()
    # Read and tokenise a chunk of rankings at a time, as training reaches it (rewardmodel.batching): memory holds
    # one chunk, however many rankings the snapshot has.
    plan = batching.BatchPlan(examples, tokenizer, batch_rankings=config.batch_rankings,
                              bucket_chunk=config.bucket_chunk, epochs=config.epochs, seed=config.seed,
                              max_length=config.max_length, keep=config.keep)
    if not len(plan.kept):
        raise ValueError("no ranking with at least one pair and a weight above 0 to train on")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    set_seed(config.seed)
    device = pick_device(config.device)
    if dist is not None and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if config.deterministic:
        use_deterministic_algorithms(device)
    model, chosen = prepare_model(model, config, device)
    model.to(device)
    if config.disable_dropout:
        switch_off_dropout(model)
    model.train()
    forward = readout.RewardReader(model)
    sharded = dist is not None and config.sharding == "fsdp"
    if sharded:
        shard(forward)
    elif dist is not None:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(chosen.precision)
    # How packed rankings reach the attention (None: one sequence per completion, as encoders always run).
    packed_mask = prefix_sharing.mask_kind(model, config.max_length) if config.share_prompt else None
    scaler = torch.amp.GradScaler("cuda") if chosen.precision == "fp16" else None

    total = math.ceil(plan.total_batches / config.grad_accum)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    params = [
        {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    warmup = int(total * config.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    result = TrainResult(n_rankings=len(plan.kept), n_pairs=plan.pairs_per_epoch * config.epochs,
                         device=str(device),
                         resolved={**chosen.as_dict(), "share_prompt": packed_mask is not None}, model=model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    began = time.perf_counter()
    step = 0
    if resume is not None:
        if resume.get("total") != total:
            raise ValueError(f"checkpoint is for {resume.get('total')} steps, this plan has {total}")
        missing = set(_trainable_state(model)) - set(resume["model"])
        if missing:
            raise ValueError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[0]}")
        if sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

            set_state_dict(forward, optimizer, model_state_dict={f"model.{k}": v for k, v in resume["model"].items()},
                           optim_state_dict=resume["optimizer"],
                           options=StateDictOptions(full_state_dict=True, strict=False))
        else:
            model.load_state_dict(resume["model"], strict=False)
            optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        step, result.losses = int(resume["step"]), list(resume["losses"])
        result.curve = [list(point) for point in resume.get("curve") or []]
        # the chunks already trained on are not tokenised again: their cuts come from the checkpoint
        result.truncated = int(resume.get("truncated", 0))
        result.completions_cut = int(resume.get("completions_cut", 0))
        result.resumed_from = step

    def state() -> dict:
        """The training state (with FSDP gathered from every process: all of them must call this together)."""
        if sharded:
            weights, optimiser = full_state(forward, optimizer)
        else:
            weights, optimiser = _trainable_state(model), optimizer.state_dict()
        return {"step": step, "total": total, "losses": list(result.losses), "curve": list(result.curve),
                "truncated": result.truncated + plan.truncated,
                "completions_cut": result.completions_cut + plan.completions_cut, "model": weights,
                "optimizer": optimiser, "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None}

    def save_state() -> None:
        if sharded:  # a collective: every process gathers, the one with the callback writes
            gathered = state()
            if checkpoint is not None:
                checkpoint(gathered)
        elif checkpoint is not None:
            checkpoint(state())

    # Under torchrun every process would have to take part in the evaluation: the curve is single-process only.
    measure_at = curve_steps(total, curve_points) if heldout_accuracy is not None and dist is None else set()
    last_saved = time.monotonic()
    stream = plan.batches(skip=step * config.grad_accum)
    for _ in range(step, total):
        group = list(itertools.islice(stream, config.grad_accum))
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for batch in group:
            mine, weights = batch, [item.example.weight for item in batch]
            totals = {}
            if dist is not None:
                totals = {"total_weight": sum(weights),
                          "total_rewards": sum(len(item.example.completions) for item in batch)}
                mine = batch[dist.rank :: dist.world]
                # A share left empty by a short last batch still runs (weight 0): every process must take part.
                weights = [item.example.weight for item in mine] if mine else [0.0]
                mine = mine or batch[:1]
            features, pair_index, pair_owner, rankings = [], [], [], []
            for owner, item in enumerate(mine):
                base = len(features)
                e = item.example
                features.extend(item.features)
                rankings.append([f["input_ids"] for f in features[base:]])
                pair_index.extend((base + w, base + lo) for w, lo in e.pairs)
                pair_owner.extend([owner] * len(e.pairs))
            if packed_mask is not None and prefix_sharing.mask_fits(rankings):
                inputs = prefix_sharing.pack(rankings, tokenizer.pad_token_id, device, packed_mask)
            else:
                inputs = collate(tokenizer, features, device)
            with torch.autocast(device_type=device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                rewards = forward(**inputs)
            loss = ranking_loss(rewards, torch.tensor(pair_index, device=device),
                                torch.tensor(pair_owner, device=device), len(mine), config.margin, config.center_coef,
                                None if all(w == 1.0 for w in weights) else torch.tensor(weights, device=device),
                                **totals)
            loss = loss / len(group)
            # DDP averages gradients over processes; each holds a part of the sum, so scale it back to the sum.
            scaled = loss * dist.world if dist is not None else loss
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
            step_loss = step_loss + loss.detach()
            result.n_forwards += len(features)
        time_due = bool(checkpoint_every_s) and time.monotonic() - last_saved >= checkpoint_every_s
        if dist is not None:
            import torch.distributed as torch_dist

            # The whole batch's loss for every process's log, and whether any process's clock says "checkpoint":
            # saving is collective under FSDP, so all processes must decide alike, in the one reduction per step.
            shared = torch.stack([torch.as_tensor(step_loss, device=device, dtype=torch.float32).reshape(()),
                                  torch.tensor(float(time_due), device=device)])
            torch_dist.all_reduce(shared)
            step_loss, time_due = shared[0], bool(shared[1] > 0)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], config.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        step += 1
        value = float(step_loss)
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {step}")
        result.losses.append(value)
        if step < total and ((checkpoint_every and step % checkpoint_every == 0) or time_due):
            save_state()
            last_saved = time.monotonic()
        if step in measure_at:
            since = result.curve[-1][0] if result.curve else 0
            window = result.losses[since:step] or [value]
            result.curve.append([step, sum(window) / len(window), heldout_accuracy(model)])
            if on_curve is not None:
                on_curve(list(result.curve))
        if progress:
            progress(step, total, value)
        if should_stop is not None and step < total and should_stop():
            save_state()
            raise TrainingInterrupted(step, total)
    result.steps = step
    result.seconds = time.perf_counter() - began
    result.truncated += plan.truncated
    result.completions_cut += plan.completions_cut
    if sharded:  # every process gathers; the caller's rank 0 writes them
        result.full_weights, _ = full_state(forward, optimizer)
    if device.type == "cuda":
        result.peak_memory_mib = torch.cuda.max_memory_allocated(device) / 2**20
    model.eval()
    return result


@torch.no_grad()
def predict(model, tokenizer, prompts: list[str], completions: list[str], max_length: int = 256,
            batch_size: int = 64, device: torch.device | None = None, keep: str = "end",
            max_tokens: int | None = None) -> tuple[torch.Tensor, int]:
    """Rewards for text pairs (float32 on CPU) and how many were truncated; batches sorted by length. With
    `max_tokens`, TooManyTokens is raised after tokenising, before any forward, when the texts hold more.

    Always in fp32, also on GPUs: evaluation compares close rewards (ties, flips between versions), which bf16's
    8 bits of mantissa would blur.
    """
    device = device or next(model.parameters()).device
    encoded = encode_pairs(tokenizer, prompts, completions, max_length, keep)
    if max_tokens is not None:
        tokens = sum(len(f["input_ids"]) for f in encoded.features)
        if tokens > max_tokens:
            raise TooManyTokens(tokens, max_tokens)
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
