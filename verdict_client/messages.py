"""Chat messages as the text Verdict's reward models read: one rule for the importer (annotation.preference_import)
and for the RL client (verdict_client.reward), so a policy's conversational outputs are scored in the format the
reward model was trained on."""

from __future__ import annotations

from typing import Any


def is_messages(value: Any) -> bool:
    """A non-empty list of ``{"role", "content"}`` dicts whose content is text."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value))


def flatten(value: Any) -> str:
    """A string as it is; chat messages flattened: one message gives its content, several their 'role: content'
    paragraphs. Anything else raises ValueError."""
    if isinstance(value, str):
        return value
    if is_messages(value):
        if len(value) == 1:
            return value[0]["content"]
        return "\n\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in value)
    raise ValueError("expected a string or a list of {role, content} messages")
