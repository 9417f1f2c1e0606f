"""Security settings: a clean `check --deploy`, no production start without a secret, login everywhere, size limits."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[1]
# Set by the test run (or the browser tests); a production process must not inherit them.
NOT_INHERITED = {"DJANGO_SECRET_KEY", "VERDICT_MODE", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def run_manage(*args: str, env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings_production", "VERDICT_VAR_DIR": str(tmp_path)})
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


SERVICES = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/verdict", "REDIS_URL": "redis://127.0.0.1:6379/15"}


def deploy_check(tmp_path: Path) -> subprocess.CompletedProcess:
    key = secrets.token_urlsafe(50)[:50]
    return run_manage("check", "--deploy", "--fail-level", "WARNING",
                      env_extra={"DJANGO_SECRET_KEY": key, **SERVICES}, tmp_path=tmp_path)


@pytest.fixture(scope="module")
def deploy_check_result(tmp_path_factory):
    return deploy_check(tmp_path_factory.mktemp("prodvar"))


def test_production_deploy_check_has_no_security_warnings(deploy_check_result):
    output = deploy_check_result.stdout + deploy_check_result.stderr
    assert "security." not in output, output
    assert "ImproperlyConfigured" not in output, output


def test_production_deploy_check_is_clean(deploy_check_result):
    """Everything, including drf-spectacular's schema check (it runs with --deploy)."""
    result = deploy_check_result
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_refuses_a_local_database_or_broker(tmp_path, missing):
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **SERVICES, missing: ""}
    result = run_manage("check", env_extra=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"{missing} must be set in production mode" in result.stderr


def test_training_must_fit_in_the_brokers_visibility_timeout(settings):
    from rewardmodel.checks import training_fits_in_visibility_timeout

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
    settings.VERDICT_RM_TIME_LIMIT = 3 * 3600
    assert training_fits_in_visibility_timeout() == []
    settings.VERDICT_RM_TIME_LIMIT = 6 * 3600
    errors = training_fits_in_visibility_timeout()
    assert [e.id for e in errors] == ["rewardmodel.E001"]
    settings.CELERY_BROKER_URL = "filesystem://"  # no redelivery timeout there
    assert training_fits_in_visibility_timeout() == []


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage("check", env_extra=SERVICES, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_unknown_mode_is_refused(tmp_path):
    result = run_manage("check", env_extra={"VERDICT_MODE": "prod", **SERVICES}, tmp_path=tmp_path)
    assert result.returncode != 0 and "VERDICT_MODE must be" in result.stderr


@pytest.mark.django_db
def test_login_required_on_pages_and_api(client):
    home = client.get("/")
    assert home.status_code == 302 and reverse("login") in home["Location"]
    assert client.get("/admin/").status_code == 302
    for url in ("/api/projects/", "/api/rankings/"):
        assert client.get(url).status_code in (401, 403), url
    assert client.get("/api/projects/", HTTP_AUTHORIZATION="Token not-a-real-token").status_code == 401


@pytest.mark.django_db
def test_request_body_limit_is_enforced(client, make_user):
    client.force_login(make_user("poster"))
    body = "rationale=" + "x" * 5000
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = client.post("/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 413)
    # The same body is fine under the normal limit (the login form simply re-renders or redirects).
    response = client.post("/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302)


@pytest.mark.django_db
def test_api_docs_load_swagger_ui_from_our_static_files(client, make_user):
    client.force_login(make_user("reader"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "cdn.jsdelivr" not in body and "drf_spectacular_sidecar/swagger-ui-dist" in body
