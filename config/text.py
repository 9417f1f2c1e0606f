"""Text from outside (model outputs, prompts, names and reasons people typed, imported metadata) shown in pages.

Bidirectional control characters (U+202E RIGHT-TO-LEFT OVERRIDE and friends) reorder what a reader sees without
being seen ("evil\u202eexe.txt" reads "eviltxt.exe"), so wherever such text is shown they become visible
``<U+202E>`` markers, as code viewers show them. :func:`show_bidi_controls` is the one rule; the template filter
``visible`` (a builtin of every template, config.template_filters), the markdown renderer, models' ``__str__`` (the
admin's titles and breadcrumbs) and :class:`VisibleTextAdmin` (the admin's lists and read-only fields) all use it.
What is stored is never changed: an edit form shows the text as it is.
"""

from __future__ import annotations

import re

# Embeddings, overrides, isolates and the implicit marks: everything that reorders text invisibly.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def show_bidi_controls(text) -> str:
    """`text` as a string with each bidirectional control character replaced by a visible ``<U+XXXX>`` marker."""
    text = "" if text is None else str(text)
    if not BIDI_CONTROLS.search(text):
        return text
    return BIDI_CONTROLS.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


class VisibleTextAdmin:
    """ModelAdmin mixin: the change list's text columns are shown through show_bidi_controls (Django's admin renders
    them as stored). Read-only text on a change page gets a display method of its own where it comes from outside
    (a pause's reason, say); titles and breadcrumbs are the models' ``__str__``, which use the same rule."""

    def get_list_display(self, request):
        return [self._visible(name) for name in super().get_list_display(request)]

    def _visible(self, name):
        from django.db import models

        if not isinstance(name, str):
            return name
        try:
            field = self.model._meta.get_field(name)
        except Exception:  # a method or attribute name, not a field: it renders itself
            return name
        if not isinstance(field, models.CharField | models.TextField) or field.choices:
            return name
        cache = self.__dict__.setdefault("_visible_columns", {})
        if name not in cache:
            def column(obj, _name=name):
                return show_bidi_controls(getattr(obj, _name))

            column.short_description = field.verbose_name
            column.admin_order_field = name
            column.__name__ = name
            cache[name] = column
        return cache[name]
