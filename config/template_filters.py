"""Filters every template has without {% load %} (a builtin in settings.TEMPLATES): ``visible`` shows text from
outside with its bidirectional controls as markers (config.text); autoescaping still applies after it."""

from django import template

from config.text import show_bidi_controls

register = template.Library()


@register.filter(name="visible", is_safe=False)
def visible(value) -> str:
    return show_bidi_controls(value)
