"""Judges and what they said.

A *judge* is a machine rater configured per project: a backend (an OpenAI-compatible chat endpoint today), a prompt
template with the project's constitution (a list of principles), and what it costs. Its API key is never stored:
the judge names the environment variable that holds it (``api_key_env``). Each question put to a judge, one pair in
one order under one template version, is a ``JudgeVerdict`` row: unique, so a run that is repeated or resumed never
asks (nor pays) twice, and a reply that could not be parsed is recorded as a failure, never guessed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from annotation.models import Completion, Project, RankingTask


def default_principles() -> list[str]:
    # The HHH criteria in one sentence each: the constitution a project starts from (Anthropic's HHH framing).
    return ["Prefer the response that is more helpful: it does what was asked, correctly and completely.",
            "Prefer the response that is more honest: it does not state falsehoods or feign certainty.",
            "Prefer the response that is more harmless: it does not help with harm, and it refuses politely when it "
            "must."]


class Judge(models.Model):
    OPENAI, LOCAL, REWARD_MODEL = "openai", "local", "reward_model"
    BACKENDS = [(OPENAI, "OpenAI-compatible chat completions (vLLM, TGI, llama.cpp, Ollama, hosted APIs)"),
                (LOCAL, "A local transformers causal LM on the GPU workers (model: its folder)"),
                (REWARD_MODEL, "The project's active reward-model version (free, instant)")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    backend = models.CharField(max_length=16, choices=BACKENDS, default=OPENAI)
    # Not a URLField: Django's URL check refuses single-label hosts, and an endpoint is often a compose service
    # (http://vllm:8000/v1) or a bare host name on the workers' network.
    base_url = models.CharField(
        max_length=500, blank=True, help_text="e.g. http://vllm:8000/v1",
        validators=[RegexValidator(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?$", "an http(s) URL, e.g. "
                                   "http://vllm:8000/v1")])
    model = models.CharField(max_length=500, blank=True, help_text="The model name the endpoint expects; for a "
                             "local model, its folder on the GPU workers' disk.")
    api_key_env = models.CharField(
        max_length=100, blank=True, validators=[RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "an environment variable name")],
        help_text="The NAME of the environment variable that holds the key on the workers (never the key itself).")
    temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1), MaxValueValidator(4096)],
                                             help_text="Tokens the judge may answer with (A, B or TIE needs few).")
    timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(1.0), MaxValueValidator(600.0)])
    max_retries = models.PositiveSmallIntegerField(
        default=4, validators=[MaxValueValidator(10)],
        help_text="Retries of a call that timed out or got 429/5xx, with backoff (Retry-After when sent).")
    parse_retries = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(5)],
        help_text="Times a reply that is not A, B or TIE is asked again before it is recorded as a failure.")
    concurrency = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(32)],
        help_text="Tasks asked at once (an HTTP endpoint only; a model loaded in the worker answers one at a time).")
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="The most calls a run makes per minute (the endpoint's rate limit); blank: no limit.")
    principles = models.JSONField(default=default_principles, blank=True,
                                  help_text="The constitution: principles the judge applies, in order.")
    template = models.TextField(blank=True, help_text="The instruction; blank: feedback.prompting.DEFAULT_TEMPLATE. "
                                "Placeholders: $guidelines $principles $prompt $first $second.")
    cost_per_1k_input = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    cost_per_1k_output = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True,
                                 help_text="Money this judge may spend in all; blank: no limit. A run stops there.")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                on_delete=models.PROTECT, related_name="judge",
                                help_text="The inactive account its rankings are made under (feedback.rankings).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="judge_name_unique_per_project")]

    def __str__(self) -> str:
        return f"{self.name} ({self.model or self.backend}) in {self.project}"

    @property
    def queue(self) -> str:
        """Where its runs go: a model loaded here needs a GPU worker; an HTTP endpoint waits on the network."""
        return "default" if self.backend == self.OPENAI else "gpu"

    @property
    def parallel(self) -> int:
        """Tasks asked at once: an HTTP endpoint serves many; a model loaded in the worker answers one at a time."""
        return self.concurrency if self.backend == self.OPENAI else 1

    def clean(self) -> None:
        errors = judge_errors(self.backend, self.base_url, self.model, self.template, self.principles)
        if errors:
            raise ValidationError(errors)


def judge_errors(backend: str, base_url: str, model: str, template: str, principles) -> dict[str, str]:
    """The rules for a judge's settings, shared by the admin (clean) and the API's serializer."""
    from feedback.prompting import TemplateError, check_template

    errors = {}
    if backend == Judge.OPENAI and not (base_url and model):
        errors["base_url" if not base_url else "model"] = "an OpenAI-compatible judge needs a base URL and a model"
    if backend == Judge.LOCAL and not model:
        errors["model"] = "a local judge needs the folder of its model"
    if template:
        try:
            check_template(template)
        except TemplateError as exc:
            errors["template"] = str(exc)
    if not isinstance(principles, list) or not all(isinstance(p, str) and p.strip() for p in principles):
        errors["principles"] = "a list of principles, each a non-empty string"
    return errors


class JudgeVerdict(models.Model):
    """One question to a judge: is `first` (shown as A) or `second` (shown as B) better, under one template version.
    The same pair is asked in both orders (two rows) to cancel the judge's position bias."""

    A, B, TIE, FAILED = "A", "B", "TIE", "failed"
    OUTCOMES = [(A, "A (shown first)"), (B, "B (shown second)"), (TIE, "Tie"), (FAILED, "No usable reply")]

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    task = models.ForeignKey(RankingTask, on_delete=models.CASCADE, related_name="judge_verdicts")
    first = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    template_version = models.CharField(max_length=16)
    outcome = models.CharField(max_length=8, choices=OUTCOMES)
    reply = models.TextField(blank=True, help_text="The judge's last reply, as sent (shown escaped).")
    error = models.CharField(max_length=500, blank=True)
    ranking = models.ForeignKey("annotation.Ranking", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="judge_verdicts", help_text="The judge's ranking this verdict went into.")
    attempts = models.PositiveSmallIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "first", "second", "template_version"],
                                               name="one_verdict_per_question")]

    def __str__(self) -> str:
        return f"{self.judge.name}: {self.first_id} vs {self.second_id} → {self.outcome}"


class JudgeRun(models.Model):
    """One run of a judge over its project's unranked tasks, as a Celery job (feedback.tasks.run_judge_job) with
    progress. A lost worker's job is delivered again and continues: answered questions are never asked twice."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATUSES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Tasks at most; blank: every pending one.")
    tasks_done = models.PositiveIntegerField(default=0)
    tasks_total = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True, help_text="feedback.runs.RunSummary, when it ends.")
    message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Deliveries of the job (more than one: a lost worker).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.judge.name} run {self.pk} ({self.status}, {self.tasks_done}/{self.tasks_total})"

    @property
    def progress(self) -> float:
        return self.tasks_done / self.tasks_total if self.tasks_total else (1.0 if self.status == self.DONE else 0.0)
