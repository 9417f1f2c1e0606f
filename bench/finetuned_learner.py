"""The reward model a fine-tuned active-learning simulation trains: MiniLM fine-tuned as a Bradley–Terry reward model,
cheap enough to retrain at every checkpoint of many simulated curves.

The backbone's lower layers are frozen and run once per dataset (their outputs are cached); at each checkpoint the
top ``train_layers`` transformer layers, the pooler and a new reward head are trained again from the pretrained
weights on the labels so far, with the platform's loss (rewardmodel.trainer.ranking_loss). ``train_layers = 6`` is
full fine-tuning as the platform does it (on a GPU); the CPU setting trains the top one or two. After training it
gives every item's reward and its last-layer features (the head's input), which is what the platform's selection
reads from the active version (rewardmodel.scoring.embed).

Django-free: used by bench/active_learning_finetuned.py on CPU and on a GPU machine alike.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class LearnerConfig:
    train_layers: int = 1
    max_length: int = 128
    epochs: int = 3
    lr: float = 1e-4
    head_lr: float = 1e-3
    batch_pairs: int = 16
    device: str = "cpu"


class CachedBackbone:
    """The frozen lower part of the packaged MiniLM, run once over every item; the trainable top copied from it."""

    def __init__(self, prompts: list[str], completions: list[str], config: LearnerConfig):
        from rewardmodel.backbones import default_backbone_path, load_backbone
        from rewardmodel.encoding import encode_pairs

        self.config = config
        self.device = torch.device(config.device)
        model, tokenizer = load_backbone(default_backbone_path())
        model.eval()
        self.model = model.to(self.device)
        layers = model.bert.encoder.layer
        if not 1 <= config.train_layers <= len(layers):
            raise ValueError(f"train_layers must be from 1 to {len(layers)}")
        self.frozen = len(layers) - config.train_layers
        encoded = encode_pairs(tokenizer, prompts, completions, config.max_length)
        self.n = len(encoded.features)
        width = max(len(f["input_ids"]) for f in encoded.features)
        ids = torch.zeros((self.n, width), dtype=torch.long)
        types = torch.zeros((self.n, width), dtype=torch.long)
        mask = torch.zeros((self.n, width), dtype=torch.long)
        for i, f in enumerate(encoded.features):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"])
            mask[i, :k] = 1
            if "token_type_ids" in f:
                types[i, :k] = torch.tensor(f["token_type_ids"])
        self.mask = mask
        hidden = []
        with torch.no_grad():
            for start in range(0, self.n, 64):
                sl = slice(start, start + 64)
                out = model.bert(input_ids=ids[sl].to(self.device), attention_mask=mask[sl].to(self.device),
                                 token_type_ids=types[sl].to(self.device), output_hidden_states=True)
                hidden.append(out.hidden_states[self.frozen].to("cpu", torch.float32))
        self.hidden = torch.cat(hidden)  # (n, width, 384): the input to the first trained layer

    def fresh_top(self, seed: int) -> TopModel:
        torch.manual_seed(seed)
        return TopModel(self.model, self.frozen).to(self.device)

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(index, dtype=torch.long)
        mask = self.mask[rows]
        width = int(mask.sum(1).max())  # trim the batch's padding
        return self.hidden[rows, :width].to(self.device), mask[:, :width].to(self.device)


class TopModel(torch.nn.Module):
    """The trained part: the top transformer layers, the pooler and a new one-logit head (the platform's reward head
    for an encoder: the classifier on the pooled [CLS])."""

    def __init__(self, model, frozen: int):
        super().__init__()
        self.config = model.config
        self.layers = copy.deepcopy(model.bert.encoder.layer[frozen:])
        self.pooler = copy.deepcopy(model.bert.pooler)
        self.head = torch.nn.Linear(model.config.hidden_size, 1)
        for module in self.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0

    def features(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.layers:
            out = layer(hidden, attention_mask=attention)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.pooler(hidden)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(hidden, mask)).squeeze(-1)


@dataclass
class Trained:
    rewards: np.ndarray  # (n_items,) float64
    features: np.ndarray  # (n_items, d) the head's input
    head: np.ndarray  # (d,) the head's weights: reward = features @ head + bias


def train_and_read(backbone: CachedBackbone, labelled: np.ndarray, seed: int,
                   read: np.ndarray | None = None) -> Trained:
    """Train a fresh top on `labelled` (rows winner, loser: item indices); rewards and features of the items in
    `read` (default: all)."""
    from rewardmodel.trainer import ranking_loss

    cfg = backbone.config
    top = backbone.fresh_top(seed)
    params = [{"params": [p for n, p in top.named_parameters() if not n.startswith("head.")], "lr": cfg.lr},
              {"params": top.head.parameters(), "lr": cfg.head_lr}]
    optimiser = torch.optim.AdamW(params, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    labelled = np.asarray(labelled, dtype=np.int64).reshape(-1, 2)
    steps = cfg.epochs * math.ceil(len(labelled) / cfg.batch_pairs)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / max(1, steps)))
    top.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(labelled))
        for start in range(0, len(order), cfg.batch_pairs):
            pairs = labelled[order[start : start + cfg.batch_pairs]]
            items = pairs.reshape(-1)
            rewards = top(*backbone.batch(items))
            index = torch.arange(len(items), device=rewards.device).reshape(-1, 2)
            loss = ranking_loss(rewards, index, torch.arange(len(pairs), device=rewards.device), len(pairs),
                                margin=0.0, center_coef=0.01)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(top.parameters(), 1.0)
            optimiser.step()
            schedule.step()
    top.eval()
    read = np.arange(backbone.n) if read is None else np.asarray(read, dtype=np.int64)
    feats = np.zeros((backbone.n, top.head.in_features), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(read), 128):
            rows = read[start : start + 128]
            feats[rows] = top.features(*backbone.batch(rows)).to("cpu", torch.float64).numpy()
    head = top.head.weight.detach().to("cpu", torch.float64).numpy().reshape(-1)
    bias = float(top.head.bias.detach().to("cpu"))
    return Trained(feats @ head + bias, feats, head)
