"""Template filter ``render_markdown``: untrusted markdown → sanitised HTML (see annotation.markdown)."""

from django import template
from django.utils.safestring import SafeString

from annotation.markdown import render_markdown as _render_markdown

register = template.Library()


@register.filter(name="render_markdown")
def render_markdown(text: str | None) -> SafeString:
    return _render_markdown(text)
