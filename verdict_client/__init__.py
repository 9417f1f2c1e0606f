"""Verdict's Python client, importable without Django (it needs only the standard library): the REST API with a
token (:class:`ApiClient`). The replay uses it; so can anything outside the platform."""

from verdict_client.http import ApiClient, ApiError

__all__ = ["ApiClient", "ApiError"]
