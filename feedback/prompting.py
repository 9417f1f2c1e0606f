"""The question put to a judge: the project's guidelines and constitution, the prompt, two answers as A and B.

The default instruction follows the one LLMFAO's GPT-4 and GPT-3.5 judges were given (../shared/data), with the
project's principles added, so a recorded judge and a live one read the same question. The template's version is a
hash of everything that shapes the question: change a principle and every pair is asked again.
"""

from __future__ import annotations

import hashlib
import json
from string import Template

DEFAULT_TEMPLATE = """You are an expert in AI evaluation who is comparing the quality of model outputs.

$guidelines
Judge by these principles, in order:
$principles

You must select which model, A or B, produces better output to the prompt given in triple ampersands:

&&&
$prompt
&&&

Model A output is in triple backticks:

```
$first
```

Model B output is in triple pilcrows:

¶¶¶
$second
¶¶¶

What is better? Print only A if A wins, B if B wins, or TIE if there is a tie, nothing more."""

PLACEHOLDERS = ("guidelines", "principles", "prompt", "first", "second")


class TemplateError(ValueError):
    pass


def template_of(judge) -> str:
    return judge.template or DEFAULT_TEMPLATE


def check_template(text: str) -> None:
    """A template must name the prompt and both answers, and nothing unknown (raises TemplateError)."""
    try:
        names = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(text)
                 if m.group("named") or m.group("braced")}
    except ValueError as exc:
        raise TemplateError(str(exc)) from None
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise TemplateError(f"unknown placeholder(s) {', '.join(sorted('$' + n for n in unknown))}; "
                            f"use {', '.join('$' + p for p in PLACEHOLDERS)}")
    missing = {"prompt", "first", "second"} - names
    if missing:
        raise TemplateError(f"the template must contain {', '.join(sorted('$' + n for n in missing))}")


def template_version(judge, identity: str | None = None) -> str:
    """16 hex digits over the template, the principles, the guidelines and who answers (the model; the backend's
    ``identity()`` when given, e.g. the reward-model version): what shapes the verdict."""
    shaped = json.dumps([template_of(judge), list(judge.principles or []), judge.project.guidelines,
                         judge.model if identity is None else identity], ensure_ascii=False)
    return hashlib.sha256(shaped.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def messages(judge, prompt: str, first: str, second: str) -> list[dict]:
    """The chat messages for one question (one user message: judges served behind any chat template read it)."""
    principles = "\n".join(f"{i}. {p}" for i, p in enumerate(judge.principles or [], start=1)) or "(none given)"
    guidelines = judge.project.guidelines.strip()
    text = Template(template_of(judge)).substitute(
        guidelines=f"The project's guidelines for raters:\n{guidelines}\n" if guidelines else "",
        principles=principles, prompt=prompt, first=first, second=second)
    return [{"role": "user", "content": text}]
