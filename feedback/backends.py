"""How a judge is asked: an OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp server, Ollama, hosted
APIs), through the ``openai`` package, which retries timeouts, 429 and 5xx with exponential backoff and honours
Retry-After. The key is read from the environment variable the judge names, at call time, on the worker; it is
never stored, logged or put in an error message."""

from __future__ import annotations

import os
from dataclasses import dataclass


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


class OpenAICompatible:
    def __init__(self, judge):
        import openai

        if not judge.base_url or not judge.model:
            raise JudgeUnavailable(f"judge {judge.name!r} needs a base URL and a model")
        self.judge = judge
        self.client = openai.OpenAI(base_url=judge.base_url, api_key=api_key(judge), timeout=judge.timeout_s,
                                    max_retries=judge.max_retries)

    def complete(self, messages: list[dict]) -> ChatReply:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.judge.model, messages=messages, temperature=self.judge.temperature,
                max_tokens=self.judge.max_tokens)
        except openai.APIStatusError as exc:  # after the client's own retries
            raise JudgeUnavailable(f"{self.judge.name}: the endpoint answered {exc.status_code}") from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise JudgeUnavailable(f"{self.judge.name}: {type(exc).__name__} after "
                                   f"{self.judge.max_retries} retries") from None
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return ChatReply(text, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)


def backend_for(judge):
    if judge.backend == judge.OPENAI:
        return OpenAICompatible(judge)
    raise JudgeUnavailable(f"unknown backend {judge.backend!r}")
