"""Judges in the admin: configure them (the key stays in the workers' environment; the admin only names its variable)
and read what they said, failures included. Replies are model output: shown as text, escaped."""

from django.contrib import admin
from django.db import transaction
from django.db.models import Count, Q, Sum

from config.display import RecordAdmin, data_table
from feedback.models import Judge, JudgeRun, JudgeVerdict


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "model", "enabled", "questions", "failures", "spent", "budget"]
    list_filter = ["enabled", "backend", "project"]
    search_fields = ["name", "model", "project__name"]
    fieldsets = [
        (None, {"fields": ["project", "name", "enabled"]}),
        ("Endpoint", {"fields": ["backend", "base_url", "model", "api_key_env", "temperature", "max_tokens",
                                 "timeout_s", "max_retries", "parse_retries", "concurrency", "requests_per_minute"]}),
        ("The question", {"fields": ["principles", "template"]}),
        ("Cost", {"fields": ["cost_per_1k_input", "cost_per_1k_output", "budget"]}),
    ]
    actions = ["start_runs"]

    @admin.action(description="Run the selected judges on the workers (their pending tasks)")
    def start_runs(self, request, queryset):
        from feedback.tasks import run_judge_job

        started = 0
        for judge in queryset.filter(enabled=True):
            run = JudgeRun.objects.create(judge=judge, created_by=request.user)
            transaction.on_commit(lambda run=run, judge=judge: run_judge_job.apply_async((run.pk,), queue=judge.queue))
            started += 1
        self.message_user(request, f"{started} run(s) queued; follow them under Judge runs.")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project").annotate(
            _questions=Count("verdicts"), _failures=Count("verdicts", filter=Q(verdicts__outcome=JudgeVerdict.FAILED)),
            _spent=Sum("verdicts__cost"))

    @admin.display(ordering="_questions")
    def questions(self, obj):
        return obj._questions

    @admin.display(ordering="_failures")
    def failures(self, obj):
        return obj._failures

    @admin.display(ordering="_spent")
    def spent(self, obj):
        return obj._spent or 0


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(RecordAdmin, admin.ModelAdmin):
    list_display = ["id", "judge", "task", "first", "second", "outcome", "attempts", "cost", "error", "created_at"]
    list_filter = ["outcome", "judge"]
    list_select_related = ["judge", "task"]
    raw_id_fields = ["task", "first", "second"]
    readonly_fields = [f.name for f in JudgeVerdict._meta.fields]  # verdicts come from judges, not from people


@admin.register(JudgeRun)
class JudgeRunAdmin(RecordAdmin, admin.ModelAdmin):
    """Runs on the workers, with progress; start one from the API or `manage.py judge_tasks` (in-process)."""

    list_display = ["id", "judge", "status", "progress_shown", "attempts", "message", "created_at", "finished_at"]
    list_filter = ["status", "judge"]
    list_select_related = ["judge"]
    fields = readonly_fields = [("summary_table" if f.name == "summary" else f.name)
                                for f in JudgeRun._meta.fields if f.name != "id"]

    @admin.display(description="summary")
    def summary_table(self, obj):
        return data_table(obj.summary)

    @admin.display(description="progress")
    def progress_shown(self, obj):
        return f"{obj.tasks_done}/{obj.tasks_total}" if obj.tasks_total else "–"
