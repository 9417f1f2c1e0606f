"""A local OpenAI-compatible chat-completions server for judge tests: the shared scripted server at /v1, whose
plain-text answers become chat-completion bodies."""

from __future__ import annotations

import pytest


def completion_body(text: str, prompt_tokens: int = 100, completion_tokens: int = 1) -> dict:
    return {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "judge",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


@pytest.fixture
def chat_server(scripted_server):
    scripted_server.url += "/v1"
    scripted_server.answer = lambda request: (200, "A", {})
    scripted_server.render = lambda body: completion_body(body) if isinstance(body, str) else body
    return scripted_server
