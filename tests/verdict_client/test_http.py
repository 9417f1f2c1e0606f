"""verdict_client.ApiClient against a real HTTP server that is briefly overloaded: 503s are retried after the
server's Retry-After (or a doubling wait), up to the client's retries, then raised; other errors are not retried."""

from __future__ import annotations

import pytest

from verdict_client import ApiClient, ApiError


def replies(server, script: list[tuple[int, dict]]) -> None:
    """The server answers (status, headers) from `script` in turn, then 200 {"ok": true}."""

    def answer(request):
        if script:
            status, headers = script.pop(0)
            return status, None, headers
        return 200, {"ok": True}, {}

    server.answer = answer


def test_a_503_is_retried_after_its_retry_after(scripted_server):
    replies(scripted_server, [(503, {"Retry-After": "2"}), (503, {})])
    status, body = ApiClient(scripted_server.url, "t", retries=3).post("/x", {"a": 1})
    seen = scripted_server.times
    assert (status, body) == (200, {"ok": True}) and len(seen) == 3
    assert seen[1] - seen[0] >= 1.9  # the server's Retry-After, not the first doubling wait (1 s)
    assert seen[2] - seen[1] >= 0.9


def test_retries_run_out_and_other_errors_are_not_retried(scripted_server):
    replies(scripted_server, [(503, {})] * 3)
    with pytest.raises(ApiError) as exhausted:
        ApiClient(scripted_server.url, "t", retries=1).post("/x")
    assert exhausted.value.status == 503 and len(scripted_server.times) == 2
    replies(scripted_server, [(400, {})])
    with pytest.raises(ApiError) as refused:
        ApiClient(scripted_server.url, "t", retries=5).post("/x")
    assert refused.value.status == 400 and len(scripted_server.times) == 3
