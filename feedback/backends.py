"""How a judge is asked. Three backends, one interface (``ask``: a prompt and two answers, shown as A and B, in; a
reply out, parsed by ``feedback.parsing`` like any other):

- ``OpenAICompatible``: any chat-completions endpoint (vLLM, TGI, llama.cpp server, Ollama, hosted APIs), through
  the ``openai`` package, which retries timeouts, 429 and 5xx with exponential backoff and honours Retry-After. The
  key is read from the environment variable the judge names, at call time, on the worker; it is never stored, logged
  or put in an error message.
- ``LocalCausalLM``: a transformers causal LM in a folder on the GPU workers' disk (queue ``gpu``). It is asked the
  same question and answers with the option (A, B, TIE) it gives the highest likelihood: a small local model asked to
  *write* an answer often rambles, while the choice among the allowed answers is always one of them.
- ``RewardModelJudge``: the project's active reward-model version: free, instant, and already calibrated on this
  project; A or B by the higher reward, TIE when they are equal.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from feedback import prompting


class JudgeUnavailable(RuntimeError):
    """The endpoint could not answer (after its retries), or the judge is misconfigured."""


@dataclass
class ChatReply:
    text: str
    prompt_tokens: int
    completion_tokens: int


def api_key(judge) -> str:
    if not judge.api_key_env:
        return "none"  # local servers (vLLM, llama.cpp) accept any key; the client requires one
    value = os.environ.get(judge.api_key_env)
    if not value:
        raise JudgeUnavailable(f"the environment variable {judge.api_key_env} (the judge's key) is not set on this "
                               "worker")
    return value


class Pacer:
    """At most `per_minute` calls a minute, evenly spaced, across the threads of one run."""

    def __init__(self, per_minute: int | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        time.sleep(max(0.0, at - now))


class OpenAICompatible:
    def __init__(self, judge):
        import openai

        if not judge.base_url or not judge.model:
            raise JudgeUnavailable(f"judge {judge.name!r} needs a base URL and a model")
        self.judge = judge
        self.pacer = Pacer(judge.requests_per_minute)
        # The client's own retries (timeouts, 429, 5xx) are paced too: each attempt is a call the endpoint counts.
        self.client = openai.OpenAI(base_url=judge.base_url, api_key=api_key(judge), timeout=judge.timeout_s,
                                    max_retries=0 if judge.requests_per_minute else judge.max_retries)

    def identity(self) -> str:
        return self.judge.model

    def ask(self, prompt: str, first: str, second: str) -> ChatReply:
        return self.complete(prompting.messages(self.judge, prompt, first, second))

    def complete(self, messages: list[dict]) -> ChatReply:
        import openai

        tries = self.judge.max_retries + 1 if self.pacer.interval else 1
        for attempt in range(tries):
            self.pacer.wait()
            try:
                response = self.client.chat.completions.create(
                    model=self.judge.model, messages=messages, temperature=self.judge.temperature,
                    max_tokens=self.judge.max_tokens)
                break
            except openai.APIStatusError as exc:  # after the client's own retries
                if attempt + 1 < tries and (exc.status_code == 429 or exc.status_code >= 500):
                    continue
                raise JudgeUnavailable(f"{self.judge.name}: the endpoint answered {exc.status_code}") from None
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                if attempt + 1 < tries:
                    continue
                raise JudgeUnavailable(f"{self.judge.name}: {type(exc).__name__} after "
                                       f"{self.judge.max_retries} retries") from None
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return ChatReply(text, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)


class LocalCausalLM:
    OPTIONS = ("A", "B", "TIE")
    _loaded: dict[str, tuple] = {}  # folder → (model, tokenizer, device): one load per worker process

    def __init__(self, judge):
        if not judge.model:
            raise JudgeUnavailable(f"judge {judge.name!r} needs the folder of its model (field 'model')")
        self.judge = judge
        self.model, self.tokenizer, self.device = self._load(judge.model)

    @classmethod
    def _load(cls, folder: str):
        if folder not in cls._loaded:
            from transformers import AutoModelForCausalLM

            from rewardmodel.backbones import load_tokenizer
            from rewardmodel.trainer import pick_device

            try:
                tokenizer = load_tokenizer(folder, decoder=True)
                model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
            except OSError as exc:
                raise JudgeUnavailable(f"no causal language model at {folder}: {exc}") from None
            device = pick_device("auto")
            cls._loaded[folder] = (model.to(device).eval(), tokenizer, device)
        return cls._loaded[folder]

    def identity(self) -> str:
        return self.judge.model

    def ask(self, prompt: str, first: str, second: str) -> ChatReply:
        import torch

        question = prompting.messages(self.judge, prompt, first, second)[0]["content"] + "\n"
        context = self.tokenizer(question, add_special_tokens=False)["input_ids"]
        keep = max(1, self.model.config.max_position_embeddings - 8) if hasattr(
            self.model.config, "max_position_embeddings") else len(context)
        context = context[-keep:]  # the question ends with what to answer: cut from the front, as training does
        scores = []
        with torch.inference_mode():
            for option in self.OPTIONS:
                answer = self.tokenizer(option, add_special_tokens=False)["input_ids"]
                ids = torch.tensor([context + answer], device=self.device)
                logits = self.model(ids).logits[0, len(context) - 1:-1].float()
                logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(context):, None]).sum()
                scores.append(float(logp))
        best = max(range(len(self.OPTIONS)), key=lambda i: scores[i])
        return ChatReply(self.OPTIONS[best], len(context), 1)


class RewardModelJudge:
    def __init__(self, judge):
        from rewardmodel.registry import active_version

        self.judge = judge
        self.version = active_version(judge.project)
        if self.version is None:
            raise JudgeUnavailable(f"judge {judge.name!r}: the project has no active reward-model version")

    def identity(self) -> str:
        # A new version is a new judge: its questions are asked again.
        return f"reward-model v{self.version.number} ({self.version.pk})"

    def ask(self, prompt: str, first: str, second: str) -> ChatReply:
        from rewardmodel.scoring import score

        first_reward, second_reward = score(self.version, [prompt, prompt], [first, second])
        text = "TIE" if first_reward == second_reward else ("A" if first_reward > second_reward else "B")
        return ChatReply(text, 0, 0)


BACKENDS = {"openai": OpenAICompatible, "local": LocalCausalLM, "reward_model": RewardModelJudge}


def backend_for(judge):
    try:
        return BACKENDS[judge.backend](judge)
    except KeyError:
        raise JudgeUnavailable(f"unknown backend {judge.backend!r}") from None
