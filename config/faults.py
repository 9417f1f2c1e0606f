"""What the API answers when a dependency fails: a lost database connection becomes a JSON 503 with Retry-After,
never an HTML 500 (the DRF exception handler below), and each request starts on a checked connection
(CONN_HEALTH_CHECKS in settings), so a connection the database dropped between requests is simply reopened."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from rest_framework.response import Response
from rest_framework.views import exception_handler

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own body limit: JSON like every other API answer
        return Response({"detail": f"The request body is too large: {exc}"}, status=413)
    if isinstance(exc, OperationalError | InterfaceError):
        log.warning("database unavailable during %s: %s", context.get("view").__class__.__name__, exc)
        response = Response({"detail": "The database is unavailable for a moment; retry shortly."}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return exception_handler(exc, context)
