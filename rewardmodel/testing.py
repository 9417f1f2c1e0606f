"""Helpers for tests, demos and benchmarks: tiny random backbones (a BERT encoder; Llama- or GPT-2-style decoders with
a byte-level BPE tokenizer trained on the spot, as nothing can be downloaded) and synthetic rankings with a learnable
signal."""

from __future__ import annotations

import random
from pathlib import Path

from rewardmodel.backbones import default_backbone_path, load_tokenizer


def make_tiny_backbone(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A BertForSequenceClassification with random weights and the MiniLM tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = load_tokenizer(default_backbone_path())
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128,
                        num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = BertForSequenceClassification(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


# A chat template in the style of the instruction-tuned families (role markers, an end-of-turn token).
TINY_CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n"
                      "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def make_tiny_tokenizer(chat: bool = True):
    """A byte-level BPE tokenizer (any text encodes) with BOS/EOS, no pad token, and a chat template when `chat`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [*GOOD, *BAD, "question answer the a of is and to in what why how please explain"]
    bpe.train_from_iterator(corpus * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def make_tiny_decoder(folder: Path, family: str = "llama", hidden: int = 32, layers: int = 2, positions: int = 256,
                      seed: int = 0) -> Path:
    """A random decoder reward model saved as safetensors: "llama" (with a chat template) or "gpt2" (none)."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    tokenizer = make_tiny_tokenizer(chat=family == "llama")
    torch.manual_seed(seed)
    if family == "llama":
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                             num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=positions, num_labels=1,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        model = LlamaForSequenceClassification(config)
    elif family == "gpt2":
        config = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=2, n_positions=positions,
                            num_labels=1, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        model = GPT2ForSequenceClassification(config)
    else:
        raise ValueError(f"unknown family {family!r}: llama or gpt2")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_causal_lm(folder: Path, hidden: int = 32, layers: int = 2, positions: int = 512, seed: int = 0) -> Path:
    """A random GPT-2 language model (a causal-LM head, for local AI judges) with the tiny tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = make_tiny_tokenizer(chat=False)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=2, n_positions=positions,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


GOOD = ["a clear and correct answer", "helpful precise explanation", "correct and kind reply", "accurate summary"]
BAD = ["wrong nonsense", "rude useless text", "incorrect guess", "off topic rambling"]


def synthetic_completions(rng: random.Random, k: int = 4) -> list[tuple[str, int]]:
    """k completions with a hidden quality (higher = better): more 'good' phrases → better."""
    out = []
    for quality in range(k):
        words = [rng.choice(GOOD) for _ in range(quality)] + [rng.choice(BAD) for _ in range(k - 1 - quality)]
        rng.shuffle(words)
        out.append((" ".join(words) or "ok", quality))
    rng.shuffle(out)
    return out
