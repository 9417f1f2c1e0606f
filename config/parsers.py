"""Request bodies with bounds: JSON bodies are read up to VERDICT_MAX_JSON_BYTES and a larger one is a JSON 413,
refused from its declared length before a byte is read (Django's own limit answered an HTML 400)."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    """A body, or the work it asks for, past a bound: 413 with the reason (and the setting that holds the bound)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def read_bounded(stream, request, limit: int, what: str) -> bytes:
    """At most `limit` bytes of the body; PayloadTooLarge if it declares or holds more (`what` says which limit)."""
    declared = (request.META.get("CONTENT_LENGTH") or "0") if request is not None else "0"
    too_large = PayloadTooLarge(f"{what} is larger than {limit:,} bytes.")
    if limit and declared.isdigit() and int(declared) > limit:
        raise too_large
    if stream is None:
        return b""
    body = stream.read(limit + 1) if limit else stream.read()
    if limit and len(body) > limit:
        raise too_large
    return body


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        body = read_bounded(stream, request, settings.VERDICT_MAX_JSON_BYTES, "The JSON body (VERDICT_MAX_JSON_BYTES)")
        try:
            return json.loads(body.decode(settings.DEFAULT_CHARSET), parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")  # DRF's JSONParser refuses NaN and Infinity the same way
