"""A rater paused while holding a lease is not served that task again: the lease lapses at once, the task goes to
others, and the rate page says why nothing is offered (issue 24: it was served without notice)."""

from __future__ import annotations

import pytest

from annotation.assignment import next_assignment
from annotation.models import Assignment, Membership

pytestmark = pytest.mark.django_db


def test_a_pause_takes_back_the_lease_and_the_page_says_so(client, project, rater, rater2, make_task):
    project.overlap = 1
    project.save()
    task = make_task(project)
    held = next_assignment(project, rater)
    assert held.task == task and next_assignment(project, rater2) is None  # the one slot is held
    Membership.objects.filter(project=project, user=rater).update(paused=True)
    client.force_login(rater)
    page = client.get(f"/projects/{project.pk}/rate/").content.decode()
    assert 'id="paused-note"' in page and 'id="output-1"' not in page
    assert not Assignment.objects.get(pk=held.pk).is_live
    assert next_assignment(project, rater2).task == task  # the slot went back to the others
    Membership.objects.filter(project=project, user=rater).update(paused=False)
    assert next_assignment(project, rater) is None  # the only slot is now rater2's
