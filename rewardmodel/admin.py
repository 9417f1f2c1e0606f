"""Admin: versions with key metrics, plots and promote/rollback; training runs with progress; retrain policies."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.display import RecordAdmin, data_table, figure
from config.text import VisibleTextAdmin, show_bidi_controls
from rewardmodel import plots, registry
from rewardmodel.metrics import warnings_for
from rewardmodel.models import EvalSet, RetrainPolicy, RewardModelVersion, TrainingLock, TrainingRun


def _fmt(value) -> str:
    return figure(value) if isinstance(value, int | float) else "–"


@admin.register(RewardModelVersion)
class RewardModelVersionAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    """Versions are records of training: viewable, promoted or rolled back with the actions, never edited."""

    # Few columns: the list must fit a 1366 px screen (tests/test_admin_browser.py); promoted_at is on the page.
    list_display = ("project", "number", "status_shown", "accuracy", "ece", "flip_rate", "length_spearman",
                    "n_rankings", "gate_verdict", "created_at")
    list_filter = ("project", "status", "is_active")
    actions = ["promote_selected", "rollback_projects"]
    readonly_fields = ("project", "number", "status", "is_active", "warnings", "gate_reason", "gate_interval", "path",
                       "base_model",
                       "config_table", "snapshot_summary", "metrics_summary", "eval_sets_card", "plots", "parent",
                       "job_key", "created_at", "promoted_at")
    fields = readonly_fields

    @admin.display(description="training options")
    def config_table(self, obj):
        return data_table(obj.config)

    @admin.display(description="status", ordering="status")
    def status_shown(self, obj):
        if obj.is_active:
            return format_html("<strong>{}, active</strong>", obj.get_status_display())
        return obj.get_status_display()

    @admin.display(description="held-out acc.")
    def accuracy(self, obj):
        return _fmt(obj.metrics.get("heldout_accuracy"))

    @admin.display(description="ECE (T-scaled)")
    def ece(self, obj):
        return _fmt(obj.metrics.get("ece_after"))

    @admin.display(description="flip rate")
    def flip_rate(self, obj):
        return _fmt(obj.metrics.get("flip_rate_vs_parent"))

    @admin.display(description="reward~length ρ")
    def length_spearman(self, obj):
        rho = _fmt((obj.metrics.get("length_correlation") or {}).get("spearman"))
        warned = [w for w in warnings_for(obj.metrics) if w.startswith("reward follows length")]
        if warned:  # a bare −0.51 said nothing: flag it, the reason on hover
            return format_html('<span class="length-warning" title="{}">⚠ {}</span>', warned[0], rho)
        return rho

    @admin.display(description="warnings")
    def warnings(self, obj):
        found = warnings_for(obj.metrics)
        return format_html_join("", "<p>⚠ {}</p>", ((w,) for w in found)) if found else "none"

    @admin.display(description="promotion gate")
    def gate_verdict(self, obj):
        """The verdict in a word or two for the list (the whole reason on hover and on the version's page)."""
        reason = obj.gate_reason
        if not reason:
            return "–"
        return format_html('<span title="{}">{}</span>', reason, reason.split(":", 1)[0])

    @admin.display(description="promotion gate")
    def gate_reason(self, obj):
        return obj.gate_reason or "–"

    @admin.display(description="accuracy vs active (95% CI)")
    def gate_interval(self, obj):
        g = obj.gate
        if g.get("accuracy_delta") is None:
            return "–"
        return format_html("{} ({} to {}), margin {}", _fmt(g["accuracy_delta"]), _fmt(g.get("ci_low")),
                           _fmt(g.get("ci_high")), _fmt(g.get("margin")))

    @admin.display(description="rankings")
    def n_rankings(self, obj):
        return obj.snapshot.get("n_rankings")

    @admin.display(description="snapshot")
    def snapshot_summary(self, obj):
        s = obj.snapshot
        split = s.get("split", {})
        return format_html("sha256 {} · {} rankings · {} pairs · held-out {} rankings over {} prompts",
                           s.get("sha256", "")[:16], s.get("n_rankings"), s.get("n_pairs"),
                           len(split.get("heldout_ranking_ids", [])), len(split.get("heldout_prompt_ids", [])))

    @admin.display(description="metrics")
    def metrics_summary(self, obj):
        mt = obj.metrics
        corr = mt.get("length_correlation") or {}
        return format_html(
            "held-out accuracy {} on {} pairs (active {}) · ECE {} → {} with T={}{} · reward–length Pearson {} "
            "Spearman {} · flip rate vs parent {} · truncated texts {} ({} completions cut, {} kept) · {} pairs/s "
            "on {} × {} process(es), {}, LoRA r={}",
            _fmt(mt.get("heldout_accuracy")), mt.get("heldout_pairs"), _fmt(mt.get("active_heldout_accuracy")),
            _fmt(mt.get("ece_before")), _fmt(mt.get("ece_after")), _fmt(mt.get("temperature")),
            f" (not fitted: {mt['temperature_skipped']})" if mt.get("temperature_skipped") else "",
            _fmt(corr.get("pearson")), _fmt(corr.get("spearman")), _fmt(mt.get("flip_rate_vs_parent")),
            mt.get("truncated"), mt.get("train_completions_cut", "–"), mt.get("truncation_keeps", "–"),
            _fmt(mt.get("pairs_per_second")), mt.get("device"), mt.get("processes", 1),
            (mt.get("resolved") or {}).get("precision", "–"), (mt.get("resolved") or {}).get("lora_r", 0))

    @admin.display(description="evaluation sets")
    def eval_sets_card(self, obj):
        """Accuracy on the project's evaluation sets, per subset, with 95 % intervals (rewardmodel.eval_sets)."""
        sets = (obj.metrics or {}).get("eval_sets") or {}
        if not sets:
            return "– (no evaluation set when this version was trained)"
        rows = []
        for name, figures in sets.items():
            for subset, f in [("all", figures["overall"]), *figures["subsets"].items()]:
                rows.append(format_html("<tr><td>{}</td><td>{}</td><td>{}</td><td>{} [{}, {}]</td></tr>",
                                        show_bidi_controls(name), show_bidi_controls(subset), f["pairs"],
                                        _fmt(f["accuracy"]), _fmt(f["ci95"][0]), _fmt(f["ci95"][1])))
        return format_html("<table><tr><th>set</th><th>subset</th><th>pairs</th><th>accuracy [95 % CI]</th></tr>"
                           "{}</table>", format_html_join("", "{}", ((r,) for r in rows)))

    @admin.display(description="plots")
    def plots(self, obj):
        if not obj.pk or not obj.metrics:
            return "–"
        urls = [reverse("admin:rewardmodel_rewardmodelversion_plot", args=[obj.pk, kind]) for kind in plots.KINDS]
        return format_html('<img src="{}" alt="loss curve"> <img src="{}" alt="held-out curve while training" '
                           'id="heldout-curve"> <img src="{}" alt="reliability diagram"> '
                           '<img src="{}" alt="reward vs length">', *urls)

    def get_urls(self):
        extra = [path("<id:pk>/plot/<str:kind>.png", self.admin_site.admin_view(self.plot_view),
                      name="rewardmodel_rewardmodelversion_plot")]
        return extra + super().get_urls()

    def plot_view(self, request, pk: int, kind: str):
        version = self.get_object(request, str(pk))
        if version is None or not self.has_view_permission(request, version) or kind not in plots.KINDS:
            raise Http404
        return HttpResponse(plots.render(kind, version.metrics), content_type="image/png")

    @admin.action(description="Promote the selected version (make it active)")
    def promote_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        version = queryset.get()
        try:
            registry.promote(version, by=request.user.get_username())
        except (ValueError, FileNotFoundError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{version.project} now uses version {version.number}.")

    @admin.action(description="Roll back the selected versions' projects to their previous active version")
    def rollback_projects(self, request, queryset):
        for project_id in set(queryset.values_list("project_id", flat=True)):
            try:
                previous = registry.rollback(project_id)
            except ValueError as exc:
                self.message_user(request, f"project {project_id}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{previous.project} rolled back to version {previous.number}.")


@admin.register(TrainingRun)
class TrainingRunAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    """Runs are records of the workers' jobs: read-only (start one from the API, the admin's run controls or
    `manage.py train_reward_model`)."""

    list_display = ("project", "status", "progress_bar", "trigger", "attempts", "message", "created_at", "finished_at",
                    "version")
    list_filter = ("project", "status", "trigger")
    fields = readonly_fields = [*(("overrides_table" if f.name == "overrides" else f.name)
                                  for f in TrainingRun._meta.fields if f.name not in ("id", "curve")),
                                "heldout_curve"]  # the curve is drawn, not shown as numbers

    @admin.display(description="training options asked for")
    def overrides_table(self, obj):
        return data_table(obj.overrides) if obj.overrides else "– (the policy's)"

    @admin.display(description="held-out curve")
    def heldout_curve(self, obj):
        if not obj.pk or not obj.curve:
            return "– (recorded while the run trains, up to 20 points)"
        return format_html('<img src="{}" alt="held-out curve while training" id="heldout-curve">',
                           reverse("admin:rewardmodel_trainingrun_curve", args=[obj.pk]))

    def get_urls(self):
        extra = [path("<id:pk>/curve.png", self.admin_site.admin_view(self.curve_view),
                      name="rewardmodel_trainingrun_curve")]
        return extra + super().get_urls()

    def curve_view(self, request, pk: int):
        run = self.get_object(request, str(pk))
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        return HttpResponse(plots.curve_png(run.curve), content_type="image/png")

    @admin.display(description="progress")
    def progress_bar(self, obj):
        steps = f" ({obj.step}/{obj.total})" if obj.total else ""
        return format_html('<progress max="1" value="{}"></progress> {}%{}', f"{obj.progress:.3f}",
                           round(obj.progress * 100), steps)


class RetrainPolicyForm(forms.ModelForm):
    class Meta:
        model = RetrainPolicy
        fields = "__all__"

    def clean_hyperparameters(self):
        from rewardmodel.trainer import TrainConfig

        value = self.cleaned_data["hyperparameters"]
        if not isinstance(value, dict):
            raise forms.ValidationError('Training options are a JSON object, e.g. {"epochs": 2}.')
        try:
            TrainConfig.from_dict(value)  # the same bounds as the API and the command (SECURITY.md)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(VisibleTextAdmin, admin.ModelAdmin):
    form = RetrainPolicyForm
    list_display = ("project", "schedule", "training_source", "judge_rankings", "min_train_rankings",
                    "min_heldout_pairs", "promotion_margin", "backbone_path")
    list_filter = ("enabled",)

    @admin.display(description="retrains", ordering="enabled")
    def schedule(self, obj):
        if not obj.enabled:
            return "disabled"
        return f"every {obj.min_new_rankings} new rankings"


@admin.register(TrainingLock)
class TrainingLockAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "owner", "acquired_at", "expires_at")


@admin.register(EvalSet)
class EvalSetAdmin(VisibleTextAdmin, admin.ModelAdmin):
    """Evaluation sets are added with `manage.py add_eval_set` (a file of pairs); here they are listed and removed."""

    list_display = ("name", "project", "pair_count", "source", "created_at")
    list_filter = ("project",)
    readonly_fields = ("project", "name", "source", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="pairs")
    def pair_count(self, obj):
        return obj.pairs.count()
