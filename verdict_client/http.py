"""A small HTTP client for Verdict's REST API with a token, from the standard library: retries what a restarting or
busy server answers (connection errors, 502/503, 429 after its Retry-After), raises ApiError for the rest."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def _backoff(attempt: int) -> float:
    return float(min(2**attempt, 30))


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status


class ApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 120.0, retries: int = 3):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries

    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                retries: int | None = None) -> tuple[int, object]:
        """(status, parsed JSON or None). Connection errors and 502/503 are retried with a doubling wait (or the
        503's Retry-After): a restarting or briefly overloaded server is not a reason to lose the replay; 429 waits
        for its Retry-After; other 4xx and 5xx raise ApiError. Verdict answers 503 only when it wrote nothing."""
        retries = self.retries if retries is None else retries
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in range(retries + 1):
            req = urllib.request.Request(self.base_url + path, data=data, method=method)
            req.add_header("Authorization", f"Token {self.token}")
            req.add_header("Accept", "application/json")
            if data is not None:
                req.add_header("Content-Type", content_type)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    return resp.status, (json.loads(raw) if raw else None)
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")
                if exc.code == 429 and attempt < retries:  # throttled: wait as told, as a polite client does
                    time.sleep(min(float(exc.headers.get("Retry-After") or 1), 60.0))
                    continue
                if exc.code in (502, 503) and attempt < retries:
                    time.sleep(max(_backoff(attempt), min(float(exc.headers.get("Retry-After") or 0), 60.0)))
                    continue
                raise ApiError(method, path, exc.code, text) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt >= retries:
                    raise
                time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def get(self, path: str):
        return self.request("GET", path)[1]

    def post(self, path: str, body=None, content_type: str = "application/json") -> tuple[int, object]:
        return self.request("POST", path, body, content_type)
