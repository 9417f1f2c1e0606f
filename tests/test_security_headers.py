"""One Content-Security-Policy on every response (rater pages, login, API docs, admin) and the demo secret's mode."""

from __future__ import annotations

import stat

import pytest
from django.test import Client


@pytest.mark.parametrize("url", ["/accounts/login/", "/api/docs/", "/api/schema/", "/admin/login/", "/api/projects/"])
def test_every_page_sends_the_policy_without_inline_scripts(db, url):
    policy = Client().get(url)["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_the_api_docs_page_has_no_inline_script(db):
    assert "style-src 'self' 'unsafe-inline'" in Client().get("/api/docs/")["Content-Security-Policy"]
    html = Client().get("/api/docs/").content.decode()
    assert "<script>" not in html and "<script src=" in html


def test_admin_allows_inline_styles_but_never_inline_scripts(admin_client):
    policy = admin_client.get("/admin/")["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy


def test_demo_secret_is_private(tmp_path, monkeypatch):
    from config import settings as verdict_settings

    monkeypatch.setattr(verdict_settings, "VAR_DIR", tmp_path)
    secret = verdict_settings._demo_secret()
    path = tmp_path / "demo-secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and verdict_settings._demo_secret() == secret
    path.chmod(0o644)  # as an earlier version left it
    assert verdict_settings._demo_secret() == secret and stat.S_IMODE(path.stat().st_mode) == 0o600
