"""The rater pages speak the browser's language: German with Accept-Language: de (templates, the script's strings,
messages), English otherwise; the switcher overrides the browser; the compiled catalogue is committed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def rate_page(client, project, **headers) -> str:
    response = client.get(reverse("annotation:rate", args=[project.pk]), **headers)
    assert response.status_code == 200
    return response.content.decode()


def script_strings(html: str) -> dict:
    match = re.search(r'<script id="rate-data" type="application/json">(.*?)</script>', html)
    return json.loads(match.group(1))["strings"]


def test_german_browser_gets_the_german_rate_page(client, project, rater, make_task):
    make_task(project)
    client.force_login(rater)
    html = rate_page(client, project, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    assert '<html lang="de">' in html
    assert "Absenden <kbd>Enter</kbd>" in html and ">Submit <kbd>" not in html
    assert "Ihre Rangfolge" in html and "die beste zuerst · Gleichstand erlaubt" in html  # the instructions
    assert "Richtlinien" in html and "Überspringen" in html
    assert script_strings(html)["progress"] == "%(done)s von %(k)s eingeordnet%(label)s."
    assert 'value="unsafe"' in html and "> unsicher</label>" in html  # the stored value stays English


def test_english_and_unknown_languages_get_english(client, project, rater, make_task):
    make_task(project)
    client.force_login(rater)
    for accept in ("en-US,en;q=0.9", "ja", ""):
        html = rate_page(client, project, HTTP_ACCEPT_LANGUAGE=accept)
        assert "Submit <kbd>Enter</kbd>" in html and "Absenden" not in html
        assert "Your ranking" in html and "best first · ties allowed" in html
        assert script_strings(html)["progress"] == "%(done)s of %(k)s ranked%(label)s."


def test_messages_are_translated_too(client, project, rater, make_task):
    make_task(project)
    client.force_login(rater)
    html = rate_page(client, project, HTTP_ACCEPT_LANGUAGE="de")
    assignment = re.search(r'"assignment": (\d+)', html).group(1)
    skipped = client.post(reverse("annotation:skip", args=[project.pk, assignment]), {"reason": "skip"},
                          HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert "Aufgabe übersprungen." in skipped.content.decode()


def test_the_switcher_overrides_the_browser(client, project, rater, make_task):
    make_task(project)
    client.force_login(rater)
    here = reverse("annotation:rate", args=[project.pk])
    assert 'action="/i18n/setlang/"' in rate_page(client, project)
    switched = client.post(reverse("set_language"), {"language": "de", "next": here}, HTTP_ACCEPT_LANGUAGE="en")
    assert switched.status_code == 302 and switched["Location"] == here
    assert "Absenden" in rate_page(client, project, HTTP_ACCEPT_LANGUAGE="en")


def test_login_page_is_translated(client):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Anmelden" in html and "Benutzername" in html


def test_every_language_has_its_catalogue_committed_and_complete():
    for code, _name in settings.LANGUAGES:
        if code == "en":
            continue
        folder = ROOT / "locale" / code / "LC_MESSAGES"
        po, mo = folder / "django.po", folder / "django.mo"
        assert po.exists() and mo.exists(), f"{code}: commit django.po and the compiled django.mo"
        assert 'msgstr ""\n\n' not in po.read_text(encoding="utf-8").split("\n\n", 1)[1] + "\n\n", \
            f"{code}: untranslated strings in {po}"
