"""The home page (annotation.views.home): "Start rating" only where there is something to rate, and a manager's links
to the project's quality page, its reward-model versions and its admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Membership, RankingTask


def home_of(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("annotation:home"))
    assert response.status_code == 200
    return response.content.decode()


def rate_link(project) -> str:
    return reverse("annotation:rate", args=[project.pk])


def test_a_complete_project_offers_no_rating(project, rater, make_task):
    make_task(project)
    assert rate_link(project) in home_of(rater)
    RankingTask.objects.filter(project=project).update(status=RankingTask.COMPLETE)
    html = home_of(rater)
    assert rate_link(project) not in html and "Start rating" not in html
    assert "Every task is complete." in html


def test_a_paused_rater_is_told_so(project, rater, make_task):
    make_task(project)
    Membership.objects.filter(project=project, user=rater).update(paused=True)
    html = home_of(rater)
    assert "Start rating" not in html and "paused" in html


@pytest.fixture
def admin_manager(manager):
    """The project's manager, allowed into the admin's pages (a superuser has every model permission)."""
    manager.is_superuser = True
    manager.save()
    return manager


@pytest.mark.parametrize("complete", [False, True])
def test_a_manager_gets_links_to_quality_models_and_admin(project, admin_manager, make_task, complete):
    manager = admin_manager
    make_task(project)
    if complete:
        RankingTask.objects.filter(project=project).update(status=RankingTask.COMPLETE)
    html = home_of(manager)
    assert reverse("admin:annotation_project_quality", args=[project.pk]) in html
    assert f"{reverse('admin:rewardmodel_rewardmodelversion_changelist')}?project__id__exact={project.pk}" in html
    assert reverse("admin:annotation_project_change", args=[project.pk]) in html
    assert ("Start rating" in html) is not complete


def test_no_links_to_pages_the_user_cannot_open(project, rater, manager, make_task):
    make_task(project)
    assert "/admin/" not in home_of(rater)
    assert "/admin/" not in home_of(manager)  # staff, but without the admin's permissions: its pages would refuse


def test_the_links_open_for_the_manager(project, admin_manager):
    client = Client()
    client.force_login(admin_manager)
    for url in (reverse("admin:annotation_project_quality", args=[project.pk]),
                f"{reverse('admin:rewardmodel_rewardmodelversion_changelist')}?project__id__exact={project.pk}"):
        assert client.get(url).status_code == 200, url
