"""REST API of the reward server and the RL loop.

POST /api/projects/{id}/score/      rewards from the project's active version (or a pinned one), through a reward
                                    server when one runs (serving.gateway); a call that names its policy run is
                                    captured where the project opted in (serving.capture)
GET  /api/projects/{id}/policy-runs/                the runs that scored, flagged or not (managers)
GET  /api/projects/{id}/policy-runs/{run}/watch/    a run's Goodhart watch, window by window (managers)
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import MANAGE, SEE, project_for
from annotation.serializers import DetailSerializer
from config.abuse import UserThrottle
from config.api_contract import StrictJSONTypes
from config.parsers import PayloadTooLarge
from rewardmodel.encoding import TooManyTokens
from serving import capture, gateway
from serving.models import PolicyRun, WatchWindow

MAX_ITEMS = 256


class ScoreItem(StrictJSONTypes, serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)
    completion = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class CaptureInfo(StrictJSONTypes, serializers.Serializer):
    """Who is scoring: an RL trainer's run and step (verdict_client sends them), for capture and the watch."""

    run = serializers.CharField(max_length=200)
    step = serializers.IntegerField(min_value=0, max_value=2**62, required=False, allow_null=True)


class ScoreRequest(StrictJSONTypes, serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False,
                                       help_text="Score with this version (default: the active one)")
    capture = CaptureInfo(required=False)
    prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=100_000)
    completions = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False,
                                                                    max_length=100_000),
                                        required=False, min_length=1, max_length=MAX_ITEMS)
    items = serializers.ListField(child=ScoreItem(), required=False, min_length=1, max_length=MAX_ITEMS)

    def validate(self, data):
        has_pair = "prompt" in data and "completions" in data
        if has_pair == ("items" in data):
            raise serializers.ValidationError('send either {"prompt", "completions"} or {"items"}')
        if has_pair:
            data["pairs"] = [(data["prompt"], c) for c in data["completions"]]
        else:
            data["pairs"] = [(i["prompt"], i["completion"]) for i in data["items"]]
        if not data["pairs"]:
            raise serializers.ValidationError("nothing to score")
        return data


class ScorePairsRequest(serializers.Serializer):
    """One prompt and its completions."""

    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    capture = CaptureInfo(required=False)
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)
    completions = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False,
                                                                    max_length=100_000),
                                        min_length=1, max_length=MAX_ITEMS)


class ScoreItemsRequest(serializers.Serializer):
    """Any (prompt, completion) items."""

    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    capture = CaptureInfo(required=False)
    items = serializers.ListField(child=ScoreItem(), min_length=1, max_length=MAX_ITEMS)


# The documented body: exactly one of the two shapes (ScoreRequest validates both in one place).
SCORE_REQUEST = PolymorphicProxySerializer(component_name="ScoreRequest", serializers=[ScorePairsRequest,
                                                                                        ScoreItemsRequest],
                                           resource_type_field_name=None)


class ScoreResponse(serializers.Serializer):
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()
    scores = serializers.ListField(child=serializers.FloatField())
    captured = serializers.IntegerField(help_text="Samples kept from this call (capture)")
    served_by = serializers.CharField(help_text="server:<name> (a reward server) or in-process")


class ScoreThrottle(UserThrottle):
    """Scoring's own per-user rate (VERDICT_THROTTLE_SCORE): an RL trainer calls often, a person rarely."""

    scope = "score"


class ScoreView(APIView):
    """Bounded work per call: at most VERDICT_SCORE_MAX_CHARS characters in all (checked here, before anything is
    tokenised), and in-process VERDICT_SCORE_MAX_TOKENS tokens of a MiniLM-sized model after truncation, fewer for a
    larger one (checked before any forward); past either, 413 with the reason. A reward server answers in its own
    process (serving.gateway), so the web process only routes; 503 with Retry-After when none answers in time."""

    serializer_class = ScoreRequest
    throttle_classes = [UserThrottle, ScoreThrottle]

    @extend_schema(request=SCORE_REQUEST, responses={200: ScoreResponse, 413: DetailSerializer})
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, SEE)
        body = ScoreRequest(data=request.data)
        body.is_valid(raise_exception=True)
        pairs = body.validated_data["pairs"]
        chars = sum(len(p) + len(c) for p, c in pairs)
        if chars > settings.VERDICT_SCORE_MAX_CHARS:
            raise PayloadTooLarge(f"{chars:,} characters to score; at most {settings.VERDICT_SCORE_MAX_CHARS:,} per "
                                  "call (VERDICT_SCORE_MAX_CHARS): split the batch")
        try:
            scored = gateway.score(project, body.validated_data.get("version"), pairs,
                                   max_tokens=settings.VERDICT_SCORE_MAX_TOKENS)
        except gateway.NoVersion as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except TooManyTokens as exc:
            raise PayloadTooLarge(f"{exc} (VERDICT_SCORE_MAX_TOKENS, scaled by the model's size): split the "
                                  "batch") from None
        except gateway.ScoringUnavailable as exc:
            response = Response({"detail": f"{exc}; retry shortly."}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
            response["Retry-After"] = "2"
            return response
        who = body.validated_data.get("capture")
        captured = capture.capture(project, who["run"], who.get("step"), pairs, scored.scores,
                                   scored.version_id) if who else 0
        return Response({"version": scored.version_number, "version_id": scored.version_id,
                         "scores": scored.scores, "captured": captured, "served_by": scored.via})




class WatchWindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = WatchWindow
        fields = ["id", "first_sample", "last_sample", "step_min", "step_max", "samples", "reward_mean", "reward_std",
                  "reward_quantiles", "length_correlation", "far_share", "ranked_pairs", "disagreement", "alarms",
                  "created_at"]
        read_only_fields = fields


class PolicyRunSerializer(serializers.ModelSerializer):
    samples = serializers.IntegerField(source="samples.count", read_only=True)
    latest_window = serializers.SerializerMethodField()

    class Meta:
        model = PolicyRun
        fields = ["id", "name", "last_step", "samples", "flagged", "flag_reason", "flagged_at", "created_at",
                  "last_seen_at", "latest_window"]
        read_only_fields = fields

    @extend_schema_field(WatchWindowSerializer(allow_null=True))
    def get_latest_window(self, run):
        window = run.windows.order_by("-id").first()
        return WatchWindowSerializer(window).data if window else None


class PolicyRunList(generics.ListAPIView):
    """The policy runs that scored through this project, newest first, each with its flag and latest watch window
    (managers)."""

    serializer_class = PolicyRunSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return PolicyRun.objects.filter(project=project).order_by("-last_seen_at", "-id")


class PolicyRunWatch(generics.ListAPIView):
    """One run's Goodhart watch, window by window in order (serving.watch): reward distribution, reward–length
    correlation, share far from the training data, rater disagreement, the alarms crossed (managers)."""

    serializer_class = WatchWindowSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        run = get_object_or_404(PolicyRun, project=project, pk=self.kwargs["run_id"])
        return run.windows.order_by("id")
