"""The API's one way of paging a list: keyset (cursor) pages, with ``limit``/``offset`` kept for existing clients and
the total count only when it is wanted.

* ``?cursor=`` (opaque; take it from a page's ``next`` or ``previous`` link; empty is the start) continues after
  (or before) the row it names, by the values of the list's ordering: ``WHERE (key) > (last row's key) ORDER BY key
  LIMIT n``. Its cost does not grow with the depth, and rows inserted or deleted between pages neither repeat nor
  skip a row.
* ``?offset=`` still works up to ``MAX_OFFSET``; deeper is a 400 pointing to the cursor (PostgreSQL reads and drops
  every skipped row: offset 500000 took 3.3 s). Its ``next``/``previous`` links are cursors all the same.
* ``count`` is in a first page (no cursor), as it always was, unless ``?count=false``; a cursor page has it only with
  ``?count=true``. A COUNT(*) over 3M rankings takes seconds: walking clients ask for it once, or never.

Why not DRF's CursorPagination: its position is the first ordering field only, and rows that tie on it are skipped
by an offset, which grows with the ties (all tasks of priority 0). Here the key is the whole ordering, made unique by
the primary key appended when missing; NULLs (e.g. a task without consensus) sort as PostgreSQL sorts them, last
ascending and first descending.

Paging values are plain integers in range, a cursor of this list, or ``true``/``false``; anything else is a 400
naming the parameter (DRF's LimitOffsetPagination silently fell back to its defaults, so ``offset=null`` answered 200).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Field, Model, Q, QuerySet
from django.db.models.expressions import OrderBy
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_LIMIT = 1000
MAX_OFFSET = 10_000
MAX_CURSOR_CHARS = 2000
BAD_CURSOR = "not a cursor of this list: use a next or previous link as given"


@dataclass(frozen=True)
class Key:
    """One column of a list's ordering: its lookup path, direction, model field and whether it can be NULL."""

    path: str
    descending: bool
    field: Field
    nullable: bool


def _resolve(queryset: QuerySet, path: str) -> tuple[Field, bool]:
    """The field a lookup path ends in (through relations or an annotation) and whether the value can be NULL."""
    query = queryset.query
    if path in query.annotations:
        return query.annotations[path].output_field, True
    model, nullable = queryset.model, False
    parts = path.split("__")
    for i, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist as exc:
            raise ImproperlyConfigured(f"cannot page by {path!r}: no field {part!r}") from exc
        last = i == len(parts) - 1
        if field.is_relation and last:
            # Ordering by a relation orders by the related model's own ordering: name its column instead.
            raise ImproperlyConfigured(f"cannot page by the relation {path!r}: order by one of its columns")
        # A reverse relation (e.g. a task's consensus) joins LEFT: its columns can be NULL.
        nullable |= bool(getattr(field, "null", False)) or not field.concrete
        if not last:
            model = field.related_model
    return field, nullable


def keys_of(queryset: QuerySet) -> list[Key]:
    """The queryset's ordering (its ``order_by`` or else its model's) with the primary key appended when missing."""
    query = queryset.query
    ordering = list(query.order_by) or (list(queryset.model._meta.ordering) if query.default_ordering else [])
    pk = queryset.model._meta.pk.name
    keys, paths = [], set()
    for item in ordering:
        if isinstance(item, OrderBy) and isinstance(item.expression, F) and not (item.nulls_first or item.nulls_last):
            path, descending = item.expression.name, item.descending
        elif isinstance(item, str) and item != "?":
            path, descending = item.lstrip("-"), item.startswith("-")
        else:
            raise ImproperlyConfigured(f"cannot page by {item!r}: order by field names")
        path = pk if path == "pk" else path
        if path not in paths:
            paths.add(path)
            keys.append(Key(path, descending, *_resolve(queryset, path)))
    if pk not in paths:
        keys.append(Key(pk, False, queryset.model._meta.pk, False))
    return keys


def _value_of(row: Model, path: str):
    value = row
    for part in path.split("__"):
        try:
            value = getattr(value, part)
        except ObjectDoesNotExist:  # a missing reverse one-to-one (no consensus yet)
            return None
        if value is None:
            return None
    return value


def _beyond(key: Key, value, descending: bool) -> Q:
    """Rows whose ``key`` comes strictly after ``value`` when sorted that way, NULLs placed as PostgreSQL places them
    (last ascending, first descending)."""
    if value is None:
        return Q(**{f"{key.path}__isnull": False}) if descending else Q(pk__in=[])
    if descending:
        return Q(**{f"{key.path}__lt": value})
    after = Q(**{f"{key.path}__gt": value})
    return after | Q(**{f"{key.path}__isnull": True}) if key.nullable else after


def after(keys: Sequence[Key], values: Sequence, reverse: bool = False) -> Q:
    """Rows after the row whose key is ``values`` (before it with ``reverse``): the row comparison
    ``(k1, k2, …) > (v1, v2, …)`` spelled out per column, since the columns' directions can differ."""
    condition, same = Q(pk__in=[]), Q()
    for key, value in zip(keys, values, strict=True):
        condition |= same & _beyond(key, value, key.descending != reverse)
        same &= Q(**{f"{key.path}__isnull": True}) if value is None else Q(**{key.path: value})
    return condition


def _jsonable(value):
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()  # to the microsecond: DjangoJSONEncoder drops the last three digits
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def encode_cursor(values: Sequence, reverse: bool) -> str:
    raw = json.dumps({"v": list(values), "r": reverse}, default=_jsonable, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _checked(key: Key, value):
    """A cursor's value as the key's field takes it, or a 400: a cursor is the client's input."""
    if value is None:
        if not key.nullable:
            raise ValueError
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool) or "\x00" in str(value):
        raise ValueError  # PostgreSQL cannot compare a NUL character
    value = key.field.to_python(value)
    key.field.run_validators(value)  # an integer's range: a bigger one is a database error
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        raise ValueError
    return value


def decode_cursor(raw: str, keys: Sequence[Key]) -> tuple[list, bool]:
    try:
        if len(raw) > MAX_CURSOR_CHARS:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        values, reverse = data["v"], data["r"]
        if not isinstance(values, list) or len(values) != len(keys) or not isinstance(reverse, bool):
            raise ValueError
        return [_checked(key, value) for key, value in zip(keys, values, strict=True)], reverse
    except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": BAD_CURSOR}) from exc


class KeysetPagination(BasePagination):
    """The default pagination class of every list endpoint (settings.REST_FRAMEWORK)."""

    limit_query_param, offset_query_param, cursor_query_param, count_query_param = "limit", "offset", "cursor", "count"
    query_params = (limit_query_param, offset_query_param, cursor_query_param, count_query_param)
    default_limit = settings.REST_FRAMEWORK["PAGE_SIZE"]
    max_limit = MAX_LIMIT

    def _one(self, request, name: str) -> str | None:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ValidationError({name: "give it once"})
        return values[0] if values else None

    def _integer(self, request, name: str, minimum: int, maximum: int, default: int, hint: str = "") -> int:
        raw = self._one(request, name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= maximum:
            raise ValidationError({name: f"must be one integer from {minimum} to {maximum}{hint}"})
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self._integer(request, self.limit_query_param, 1, self.max_limit, self.default_limit)
        offset = self._integer(request, self.offset_query_param, 0, MAX_OFFSET, 0,
                               "; page deeper with the cursor of the next link")
        raw_cursor = self._one(request, self.cursor_query_param) or None  # empty: from the start
        if raw_cursor is not None and offset:
            raise ValidationError({self.offset_query_param: "cannot go with a cursor"})
        count = self._one(request, self.count_query_param)
        if count not in (None, "true", "false"):
            raise ValidationError({self.count_query_param: "must be true or false"})
        self.keys = keys_of(queryset)
        cursor = decode_cursor(raw_cursor, self.keys) if raw_cursor is not None else None
        reverse = bool(cursor and cursor[1])
        ordered = queryset.order_by(*(("-" if k.descending != reverse else "") + k.path for k in self.keys))
        wants_count = count == "true" or (count is None and cursor is None)
        self.count = queryset.count() if wants_count else None
        if cursor is not None:
            ordered = ordered.filter(after(self.keys, cursor[0], reverse))
        rows = list(ordered[offset:offset + self.limit + 1])  # one more: is there a further page?
        further = len(rows) > self.limit
        rows = rows[:self.limit]
        if reverse:
            rows.reverse()
        self.has_next = further if not reverse else True
        self.has_previous = further if reverse else (cursor is not None or offset > 0)
        self.first, self.last = (rows[0], rows[-1]) if rows else (None, None)
        return rows

    def _link(self, row, reverse: bool) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), self.offset_query_param)
        values = [_value_of(row, key.path) for key in self.keys]
        return replace_query_param(url, self.cursor_query_param, encode_cursor(values, reverse))

    def get_next_link(self) -> str | None:
        return self._link(self.last, False) if self.has_next and self.last is not None else None

    def get_previous_link(self) -> str | None:
        return self._link(self.first, True) if self.has_previous and self.first is not None else None

    def get_paginated_response(self, data) -> Response:
        body = {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        if self.count is not None:
            body = {"count": self.count, **body}
        return Response(body)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123,
                          "description": "All matching rows: in a page without cursor unless count=false, "
                                         "otherwise only with count=true."},
                "next": link | {"description": "The following page (a cursor link); null on the last page."},
                "previous": link | {"description": "The page before (a cursor link); null on the first page."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        def param(name: str, schema: dict, description: str) -> dict:
            return {"name": name, "required": False, "in": "query", "description": description, "schema": schema}

        return [
            param(self.limit_query_param, {"type": "integer", "minimum": 1, "maximum": self.max_limit},
                  f"Rows per page (default {self.default_limit})."),
            param(self.cursor_query_param, {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                  "Where the page starts: the cursor of a next or previous link, as given (empty: the start)."),
            param(self.offset_query_param, {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                  "Rows to skip (not with cursor); deeper pages by cursor."),
            param(self.count_query_param, {"type": "string", "enum": ["true", "false"]},
                  "Include the total count (default: in a page without cursor only)."),
        ]
