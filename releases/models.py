"""A dataset release: a named, immutable copy of a project's trainable rankings, as they were when it was made.

The rankings are frozen row by row in :class:`ReleaseRanking`, a child table, each row the ranking's full export row
(``annotation.exporter.iter_rankings``: prompt, completions with their texts and models, order, rater id, weight,
provenance) compressed with zlib. A child table rather than one blob on the release, because a release of ~100k
rankings is hundreds of MB of text: rows are written in batches and read back with a server-side cursor, so neither
making nor exporting a release holds it in memory, PostgreSQL never sees a value near its 1 GB limit, and a diff
compares the small ``digest`` and ``order`` columns without decompressing anything. Nothing here points at the
live rankings: editing or deleting them later changes no release.

Neither model can be saved twice (``save`` refuses an update); the admin offers no change form and the API no update.
"""

from __future__ import annotations

import hashlib
import json
import zlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from annotation.models import Project
from config.text import show_bidi_controls

# Names end up in file names (the zip, its folder) and URLs: a slug with dots, nothing to escape. The API's schema
# states the patterns with `$` (portable to JSON Schema); the validators anchor with `\Z`, which a newline cannot pass.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. v1, 2026-06.rc1)"
validate_release_name = RegexValidator(NAME_PATTERN[:-1] + r"\Z", f"A release name is {NAME_RULE}.")
LICENSE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
validate_license = RegexValidator(LICENSE_PATTERN[:-1] + r"\Z",
                                  "A license is a Hugging Face license id, e.g. cc-by-4.0, mit, other.")

TRAIN, HELDOUT = "train", "heldout"
SPLITS = [(TRAIN, "Train"), (HELDOUT, "Held out (the evaluation stream)")]


class Immutable(Exception):
    """Raised on an attempt to change a release or one of its rows after it was made."""


class FrozenModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise Immutable(f"{self._meta.verbose_name} {self.pk} is immutable: make a new release instead")
        super().save(*args, **kwargs)


class DatasetRelease(FrozenModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_releases")
    name = models.CharField(max_length=64, validators=[validate_release_name], help_text=NAME_RULE)
    description = models.TextField(blank=True, help_text="Shown on the dataset card.")
    license = models.CharField(max_length=64, blank=True, validators=[validate_license],
                               help_text="The dataset card's license id; blank writes 'unknown' (a placeholder).")
    include_eval = models.BooleanField(
        default=False, help_text="Also holds the evaluation stream's rankings, as the 'heldout' split.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    n_rankings = models.PositiveIntegerField(default=0)
    n_pairs = models.PositiveBigIntegerField(default=0)
    splits = models.JSONField(default=dict, help_text="split → {rankings, pairs}")
    by_source = models.JSONField(default=dict, help_text="ranking source (rater, imported, judge) → rankings")
    sha256 = models.CharField(max_length=64, help_text="rewardmodel.snapshot.snapshot_hash of [ranking id, split, "
                              "digest of its frozen row] for every ranking, in id order.")

    class Meta:
        ordering = ["project", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_release_name_unique")]

    def __str__(self) -> str:
        return show_bidi_controls(f"{self.name} ({self.project.name})")

    @property
    def ranking_ids(self) -> list[int]:
        """The frozen list of the rankings it holds, in id order."""
        return list(self.rankings.order_by("ranking_id").values_list("ranking_id", flat=True))

    def previous(self) -> DatasetRelease | None:
        """The project's release made just before this one."""
        return (DatasetRelease.objects.filter(project_id=self.project_id, id__lt=self.pk).order_by("-id").first())


class ReleaseRanking(FrozenModel):
    """One ranking as a release froze it. `ranking_id` is a plain number, not a foreign key: the ranking may be
    deleted later and the release must keep it."""

    release = models.ForeignKey(DatasetRelease, on_delete=models.CASCADE, related_name="rankings")
    ranking_id = models.BigIntegerField()
    split = models.CharField(max_length=16, choices=SPLITS)
    source = models.CharField(max_length=16)
    n_pairs = models.PositiveIntegerField()
    order = models.JSONField(help_text="Tie groups of completion ids, best first (kept plain for diffs).")
    digest = models.CharField(max_length=64, help_text="sha256 of the frozen row's canonical JSON.")
    data = models.BinaryField(help_text="The frozen row: zlib-compressed JSON.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "ranking_id"], name="release_ranking_unique")]

    def __str__(self) -> str:
        return f"ranking {self.ranking_id} in release {self.release_id}"

    @staticmethod
    def encode(row: dict) -> tuple[bytes, str]:
        """(compressed data, digest) of a frozen row."""
        canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return zlib.compress(canonical, 6), hashlib.sha256(canonical).hexdigest()

    @staticmethod
    def decode(data: bytes | memoryview) -> dict:
        return json.loads(zlib.decompress(bytes(data)))
