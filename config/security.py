"""Security headers for every response: one Content-Security-Policy for the whole site (rater pages, login, API docs
and the admin).

No page has an inline script: JS is served as static files and data travels in json_script blocks, and the API docs
use drf-spectacular's split view (its initialiser is a file too). The admin and the API docs keep inline *styles*
(Django's admin templates and our admin displays use style attributes; Swagger UI injects a style element), so
those paths allow 'unsafe-inline' for styles, never for scripts. Written by hand rather than with django-csp: one
fixed policy plus one path exception is all it takes.
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
INLINE_STYLE_PATHS = ("/admin/", "/api/docs/")
ADMIN_CONTENT_SECURITY_POLICY = "; ".join(
    f"{k} {v} 'unsafe-inline'" if k == "style-src" else f"{k} {v}" for k, v in DIRECTIVES.items()
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        relaxed = request.path.startswith(INLINE_STYLE_PATHS)
        policy = ADMIN_CONTENT_SECURITY_POLICY if relaxed else CONTENT_SECURITY_POLICY
        response.setdefault("Content-Security-Policy", policy)
        return response
