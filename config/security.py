"""Security headers for every response: one Content-Security-Policy for the whole site (rater pages, login, API docs
and the admin).

No page has an inline script: JS is served as static files and data travels in json_script blocks, and the API docs
use drf-spectacular's split view (its initialiser is a file too). The admin alone keeps inline *style* attributes
(Django's own templates and our admin displays use them), so /admin/ allows 'unsafe-inline' for styles, never for
scripts. Written by hand rather than with django-csp: one fixed policy plus one path exception is all it takes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
CONTENT_SECURITY_POLICY = "; ".join(f"{k} {v}" for k, v in DIRECTIVES.items())
ADMIN_CONTENT_SECURITY_POLICY = "; ".join(
    f"{k} {v} 'unsafe-inline'" if k == "style-src" else f"{k} {v}" for k, v in DIRECTIVES.items()
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = ADMIN_CONTENT_SECURITY_POLICY if request.path.startswith("/admin/") else CONTENT_SECURITY_POLICY
        response.setdefault("Content-Security-Policy", policy)
        return response
