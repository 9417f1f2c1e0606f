"""The guidelines' part of the project admin: a Preview button beside the textarea, a note for the change, the
history of revisions with a diff against the previous one, and "restore this revision".

A mixin of ProjectAdmin (annotation.admin) kept in its own module so that the project admin stays about projects;
the work itself is annotation.guidelines'. The preview is a POST to the admin (staff only, CSRF-checked) answering
the sanitised HTML as JSON; the button's script is a static file (the site's Content-Security-Policy allows no inline
script).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from annotation import guidelines
from annotation.models import GuidelinesRevision
from annotation.permissions import MANAGE, project_for

HISTORY_ON_FORM = 5  # the newest revisions listed on the project's page; the history page lists the rest
HISTORY_PAGE_MAX = 500


class GuidelinesAdminMixin:
    """ProjectAdmin mixin: guidelines tools on the change form, the history pages and the preview endpoint."""

    class Media:
        css = {"all": ["annotation/guidelines_admin.css"]}
        js = ["annotation/guidelines_admin.js"]

    # ---- the project form ---------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        """The project's fieldsets with the tools (and, for who may edit, the note) right after the guidelines,
        whether the admin lists plain fields or fieldsets."""
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        extra = ["guidelines_tools", "guidelines_note"] if editable else ["guidelines_tools"]
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = list(options.get("fields", ()))
            if "guidelines" in fields and "guidelines_tools" not in fields:
                at = fields.index("guidelines") + 1
                fields[at:at] = extra
            fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "guidelines_tools")

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The note is no field of Project: the form declares it, save_model hands it to the revision.
        note = forms.CharField(required=False, max_length=300, label="Note on this change",
                               help_text="Optional: why the guidelines change (kept in their history).")
        kwargs.setdefault("form", type(self.form.__name__, (self.form,), {"guidelines_note": note}))
        return super().get_form(request, obj, change=change, **kwargs)

    @property
    def _guidelines_preview_url(self) -> str:
        return reverse("admin:annotation_project_guidelines_preview")

    def guidelines_tools(self, obj) -> str:
        preview = format_html(
            '<button type="button" class="button" id="guidelines-preview-button" data-url="{}">Preview</button> '
            '<span class="help">the guidelines in the box above, as raters will see them (not saved)</span>'
            '<div class="guidelines-preview" id="guidelines-preview" hidden></div>',
            self._guidelines_preview_url,
        )
        if not obj or not obj.pk:
            return preview
        revisions = list(GuidelinesRevision.objects.filter(project=obj).select_related("edited_by")
                         .order_by("-number")[:HISTORY_ON_FORM])
        total = revisions[0].number if revisions else 0
        rows = format_html_join(
            "", '<li><a href="{}">revision {}</a> · {} · {}{}</li>',
            ((reverse("admin:annotation_project_guidelines_revision", args=[obj.pk, r.number]), r.number,
              r.created_at.strftime("%Y-%m-%d %H:%M"), r.edited_by or "—", f" · {r.note}" if r.note else "")
             for r in revisions),
        )
        history = reverse("admin:annotation_project_guidelines_history", args=[obj.pk])
        if not total:
            return format_html('{}<div class="guidelines-history"><strong>History</strong>: none yet; saving the '
                               'project records the guidelines as revision 1.</div>', preview)
        return format_html('{}<div class="guidelines-history"><strong>History</strong> (<a href="{}">all {} '
                           'revision{}</a>; each with its diff and "restore")<ul>{}</ul></div>',
                           preview, history, total, "" if total == 1 else "s", rows)

    guidelines_tools.short_description = "Preview & history"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        guidelines.record_revision(obj, by=request.user, note=form.cleaned_data.get("guidelines_note", ""))

    # ---- pages --------------------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("guidelines/preview/", view(require_POST(self.guidelines_preview_view)),
                 name="annotation_project_guidelines_preview"),
            path("<id:object_id>/guidelines/", view(self.guidelines_history_view),
                 name="annotation_project_guidelines_history"),
            path("<id:object_id>/guidelines/<int:number>/", view(self.guidelines_revision_view),
                 name="annotation_project_guidelines_revision"),
        ]
        return custom + super().get_urls()

    def _guidelines_project(self, request: HttpRequest, object_id):
        project = project_for(request.user, object_id, MANAGE)
        if not self.has_view_permission(request, project):
            raise PermissionDenied("no permission to view this project")
        return project

    def _page(self, request, project, title: str, **context):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "original": project,
                "title": title, **context}

    def guidelines_preview_view(self, request: HttpRequest):
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied("only managers preview guidelines")
        text = request.POST.get("text")
        if text is None:
            return JsonResponse({"text": ["This field is required."]}, status=400)
        try:
            html = guidelines.preview(text)
        except guidelines.PreviewTooLong as exc:
            return JsonResponse({"text": [str(exc)]}, status=400)
        return JsonResponse({"html": str(html)})

    def guidelines_history_view(self, request: HttpRequest, object_id):
        project = self._guidelines_project(request, object_id)
        revisions = (GuidelinesRevision.objects.filter(project=project).select_related("edited_by")
                     .order_by("-number")[:HISTORY_PAGE_MAX])
        return TemplateResponse(request, "admin/annotation/project/guidelines_history.html", self._page(
            request, project, f"Guidelines history — {project}", revisions=revisions, shown_max=HISTORY_PAGE_MAX))

    def guidelines_revision_view(self, request: HttpRequest, object_id, number: int):
        project = self._guidelines_project(request, object_id)
        revision = (GuidelinesRevision.objects.filter(project=project, number=number).select_related("edited_by")
                    .first())
        if revision is None:
            raise Http404("no such revision")
        here = reverse("admin:annotation_project_guidelines_revision", args=[project.pk, number])
        if request.method == "POST":
            if not self.has_change_permission(request, project):
                raise PermissionDenied("no permission to change this project")
            restored = guidelines.restore_revision(project, number, by=request.user)
            if restored is None:
                self.message_user(request, f"The guidelines are revision {number}'s text already: nothing changed.",
                                  messages.INFO)
                return HttpResponseRedirect(here)
            self.message_user(request, f"Restored revision {number} as revision {restored.number}.",
                              messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:annotation_project_guidelines_revision",
                                                args=[project.pk, restored.number]))
        latest = guidelines.latest_revision(project)
        return TemplateResponse(request, "admin/annotation/project/guidelines_revision.html", self._page(
            request, project, f"Guidelines revision {number} — {project}", revision=revision,
            diff=guidelines.revision_diff(revision),
            is_current=latest is not None and latest.number == number and project.guidelines == revision.text,
            can_restore=self.has_change_permission(request, project)))
