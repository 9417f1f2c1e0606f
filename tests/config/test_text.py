"""Bidirectional control characters from outside are shown as markers wherever the platform shows text (config.text:
the `visible` filter, models' __str__, VisibleTextAdmin). On main they were raw outside the rate page's model text:
admin Prompts and Ranking tasks lists, pause reasons, eval-set subset names, and a project's name, description,
guidelines and criteria (admin pages, the rate page's title, breadcrumbs and criterion headings)."""

from __future__ import annotations

import re

import pytest

from annotation.models import Membership, Project
from config.text import BIDI_CONTROLS
from quality.models import PauseEvent
from rewardmodel.models import EvalPair, EvalSet, RewardModelVersion

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"
# Where the text is edited (form inputs) it is shown as stored; the rate page's data travels in a JSON block and in
# data attributes (keys its script matches, never shown).
EDITED = re.compile(r"<input[^>]*>|<textarea[^>]*>.*?</textarea>|<script[^>]*>.*?</script>|data-[a-z-]+=\"[^\"]*\"",
                    re.S)


def shown(response) -> str:
    assert response.status_code == 200, response.status_code
    return EDITED.sub("", response.content.decode())


def raw_controls(page: str) -> list[str]:
    return [page[max(0, m.start() - 40):m.end() + 40] for m in BIDI_CONTROLS.finditer(page)]


@pytest.fixture
def outside_text(make_user, make_task):
    project = Project.objects.create(name=f"Safe{RLO}txt.exe", description=f"about {LRI}x{PDI}", k=2, overlap=1,
                                     guidelines=f"Prefer {RLO}this", criteria=[f"help{RLO}ful", "honest"])
    rater = make_user("r1")
    Membership.objects.create(project=project, user=rater, role=Membership.RATER)
    Membership.objects.create(project=project, user=make_user("m1"), role=Membership.MANAGER,
                              paused_reason=f"late{RLO}")
    task = make_task(project, texts=[f"a{RLO}", "b"])
    task.prompt.external_id = f"ext{RLO}1"
    task.prompt.save()
    task.completions.update(model_name=f"model{RLO}x")
    PauseEvent.objects.create(project=project, rater=rater, paused=True, reason=f"because{RLO}gnp")
    eval_set = EvalSet.objects.create(project=project, name=f"bench{RLO}")
    EvalPair.objects.create(eval_set=eval_set, prompt="p", chosen="c", rejected="r", subset=f"sub{RLO}")
    figures = {"pairs": 1, "accuracy": 1.0, "ci95": [0.2, 1.0]}
    version = RewardModelVersion.objects.create(
        project=project, number=1, job_key="k", base_model="b", config={}, snapshot={}, path="p",
        metrics={"eval_sets": {f"bench{RLO}": {"overall": figures, "subsets": {f"sub{RLO}": figures}}}})
    return project, rater, task, version


def test_admin_pages_show_markers_not_controls(outside_text, client, make_user):
    project, rater, task, version = outside_text
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    pause = PauseEvent.objects.get()
    for url in ["/admin/annotation/project/", f"/admin/annotation/project/{project.pk}/change/",
                "/admin/annotation/prompt/", f"/admin/annotation/prompt/{task.prompt_id}/change/",
                "/admin/annotation/rankingtask/", f"/admin/annotation/rankingtask/{task.pk}/change/",
                "/admin/annotation/completion/", "/admin/annotation/membership/", "/admin/quality/pauseevent/",
                f"/admin/quality/pauseevent/{pause.pk}/change/", "/admin/rewardmodel/evalset/",
                f"/admin/rewardmodel/rewardmodelversion/{version.pk}/change/",
                f"/admin/annotation/project/{project.pk}/quality/"]:
        page = shown(client.get(url))
        assert not raw_controls(page), (url, raw_controls(page))
        assert "&lt;U+202E&gt;" in page or "&lt;U+2066&gt;" in page, url


def test_rater_pages_show_markers_not_controls(outside_text, client):
    project, rater, _, _ = outside_text
    client.force_login(rater)
    rate = shown(client.get(f"/projects/{project.pk}/rate/"))
    assert not raw_controls(rate), raw_controls(rate)
    assert "<title>Rate · Safe&lt;U+202E&gt;txt.exe · Verdict</title>" in rate
    assert "Help&lt;U+202E&gt;ful</h3>" in rate
    home = shown(client.get("/"))
    assert not raw_controls(home) and "Safe&lt;U+202E&gt;txt.exe" in home


def test_what_is_stored_is_not_changed(outside_text):
    project, *_ = outside_text
    project.refresh_from_db()
    assert project.name == f"Safe{RLO}txt.exe" and str(project) == "Safe<U+202E>txt.exe"
