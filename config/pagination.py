"""Paging that keeps the API contract: limit and offset are single integers in range, or the answer is 400 (DRF's
LimitOffsetPagination silently falls back to its defaults, so ``offset=null`` used to answer 200)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 2**63 - 1


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 1000

    def _strict(self, request, name: str, minimum: int, maximum: int, default: int | None) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return default
        raw = values[0]
        if len(values) > 1 or not raw.isdigit() or not minimum <= int(raw) <= maximum:
            raise ValidationError({name: f"must be one integer from {minimum} to {maximum}"})
        return int(raw)

    def get_limit(self, request):
        return self._strict(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request):
        return self._strict(request, self.offset_query_param, 0, MAX_OFFSET, 0)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.limit_query_param:
                p["schema"] |= {"minimum": 1, "maximum": self.max_limit}
            elif p["name"] == self.offset_query_param:
                p["schema"] |= {"minimum": 0, "maximum": MAX_OFFSET}
        return params
