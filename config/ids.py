"""Object ids in URLs: positive 64-bit integers, the range of the database's bigint keys (BigAutoField).

A larger number cannot name anything: it answers 404 on every database, where SQLite used to raise OverflowError
(an HTML 500) and PostgreSQL a 404. The ``id`` path converter (registered in config.urls) refuses such a value so
the route does not match; :class:`BoundedIdLookup` does the same for DRF's detail routes.
"""

from __future__ import annotations

from django.http import Http404

MAX_ID = 2**63 - 1


def is_id(value) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= MAX_ID


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        if not is_id(value):
            raise ValueError("not an object id")  # the route does not match: 404
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


class BoundedIdLookup:
    """DRF viewset mixin: a detail route's id past the bigint range is a 404 before any query."""

    lookup_value_regex = IdConverter.regex

    def get_object(self):
        if not is_id(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)):
            raise Http404("No such object.")
        return super().get_object()
