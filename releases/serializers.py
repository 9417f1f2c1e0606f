"""API shapes of dataset releases. A release is only ever created and read: no serializer updates one."""

from __future__ import annotations

from rest_framework import serializers

from config.api_contract import StrictJSONTypes
from releases.models import LICENSE_PATTERN, NAME_PATTERN, NAME_RULE, DatasetRelease


class ReleaseSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    splits = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()), read_only=True,
                                   help_text="split (train, heldout) → {rankings, pairs}")
    by_source = serializers.DictField(child=serializers.IntegerField(), read_only=True,
                                      help_text="ranking source (rater, imported, judge) → rankings")

    class Meta:
        model = DatasetRelease
        fields = ["id", "name", "description", "license", "include_eval", "created_by", "created_at", "n_rankings",
                  "n_pairs", "splits", "by_source", "sha256"]
        read_only_fields = fields


class ReleaseDetailSerializer(ReleaseSerializer):
    ranking_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True,
                                        help_text="The frozen list of its rankings, in id order.")

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "ranking_ids"]
        read_only_fields = fields


class CreateReleaseSerializer(StrictJSONTypes, serializers.Serializer):
    name = serializers.RegexField(NAME_PATTERN, max_length=64, help_text=NAME_RULE,
                                  error_messages={"invalid": f"must be {NAME_RULE}"})
    description = serializers.CharField(max_length=20_000, required=False, allow_blank=True, default="",
                                        help_text="Shown on the dataset card.")
    license = serializers.RegexField(LICENSE_PATTERN, max_length=64, required=False, allow_blank=True, default="",
                                     help_text="A Hugging Face license id for the card (blank: 'unknown').",
                                     error_messages={"invalid": "must be a license id such as cc-by-4.0, mit, other"})
    include_eval = serializers.BooleanField(
        required=False, default=False,
        help_text="Also freeze the evaluation stream's rankings, as the 'heldout' split.")


class ReleaseRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    sha256 = serializers.CharField()
    n_rankings = serializers.IntegerField()
    n_pairs = serializers.IntegerField()


class ChangedRankingSerializer(serializers.Serializer):
    ranking_id = serializers.IntegerField()
    fields = serializers.ListField(child=serializers.CharField(), help_text="The frozen row's fields that differ.")


class ReleaseDiffSerializer(serializers.Serializer):
    a = ReleaseRefSerializer()
    b = ReleaseRefSerializer()
    identical = serializers.BooleanField()
    rankings = serializers.DictField(child=serializers.IntegerField(), help_text="added, removed, changed, unchanged")
    pairs = serializers.DictField(child=serializers.IntegerField(), help_text="added, removed")
    by_source = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    added_ids = serializers.ListField(child=serializers.IntegerField())
    removed_ids = serializers.ListField(child=serializers.IntegerField())
    changed = ChangedRankingSerializer(many=True)
    truncated = serializers.BooleanField(help_text="The id lists hold the first 1,000 of each.")
