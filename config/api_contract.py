"""What keeps the API inside its OpenAPI contract (checked by Schemathesis in tests/test_api_contract.py).

* ``VerdictAutoSchema`` documents the error answers every endpoint can give: 401 (no or bad token), 403 (role), 404
  (unknown ids; for every path with parameters), 413 (a body past its bound; every endpoint that takes one), 429
  (throttles) and 503 (database unavailable) with DRF's ``{"detail": …}`` body, and 400 with a field → message(s)
  object wherever a request can carry input. A 400 an
  endpoint documents itself stays listed.
* ``config.pagination.KeysetPagination`` refuses paging parameters that are not plain integers in range, a cursor of
  the list, or true/false (a module of its own: DRF imports the pagination class while drf-spectacular, imported
  here, is still loading).
* ``api_not_found`` answers unknown paths under /api/ with JSON, as the rest of the API does, not an HTML page.
* ``forbid_nul_characters`` (a drf-spectacular post-processing hook) documents that no string may contain NUL:
  PostgreSQL cannot store it, and DRF's text fields refuse it.
* ``StrictJSONTypes`` makes a serializer refuse JSON values of the wrong type (DRF turns 5 into "5" for a text
  field and "5" into 5 for a number), so what the schema forbids is refused.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
FIELD_ERRORS = {
    "type": "object",
    "description": "Each offending field (or 'detail', 'non_field_errors') with its message or messages.",
    "additionalProperties": True,
}
ERRORS = {
    "401": "No credentials, or an unknown token.",
    "403": "Your role in this project does not allow it.",
    "404": "No such object, or one you may not see.",
    "429": "Throttled: wait the number of seconds in Retry-After.",
    "503": "The database is unavailable for a moment: retry after the seconds in Retry-After.",
}


def _body(schema: dict, description: str, media_types: list[str]) -> dict:
    return {"content": {m: {"schema": schema} for m in media_types}, "description": description}


# The API docs' sections: each endpoint by the app its view lives in (annotation's split by area), so that a new
# endpoint lands in its app's section without a decorator. An app not listed gets its own name as its section.
APP_TAGS = {
    "quality": "quality",
    "rewardmodel": "reward models",
    "feedback": "judges",
    "serving": "serving",
    "active_learning": "active learning",
    "replay": "replay",
}
# Annotation's endpoints by the first path segment after the project that names their area.
ANNOTATION_AREAS = (
    (("export", "import", "imports"), "imports & exports"),
    (("tasks", "assignments", "rankings"), "tasks & rankings"),
)


def tag_for(view_module: str, path: str) -> str:
    """The docs section of an endpoint, from its view's module (``quality.api`` → quality) and its path."""
    app = view_module.split(".", 1)[0]
    if app != "annotation":
        return APP_TAGS.get(app, app.replace("_", " "))
    parts = {p for p in path.strip("/").split("/") if p and not p.startswith("{")}
    for segments, tag in ANNOTATION_AREAS:
        if parts.intersection(segments):
            return tag
    return "projects"


class VerdictAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:  # @extend_schema(tags=…) on a view still wins: it overrides this method
        return [tag_for(type(self.view).__module__, self.path)]

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        # A body that is one of several shapes (oneOf) has to be sent: drf-spectacular cannot tell on its own.
        if body is not None and isinstance(self.get_request_serializer(), PolymorphicProxySerializer):
            body["required"] = True
        return body

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        # Errors come in whatever the client asked for among the view's renderers (the export also speaks NDJSON).
        media = [m for m in self.map_renderers("media_type") if m != "text/html"] or ["application/json"]
        for code, description in ERRORS.items():
            if code == "404" and "{" not in self.path:
                continue
            responses.setdefault(code, _body(DETAIL, description, media))
        if self.method in ("POST", "PUT", "PATCH"):  # config.parsers: a body past its bound
            responses.setdefault("413", _body(DETAIL, "The body, or the work it asks for, is past a bound "
                                              "(SECURITY.md): the detail names the setting.", media))
        takes_input = self.method in ("POST", "PUT", "PATCH") or any(
            p.get("in") == "query" for p in self._get_parameters())
        if takes_input or "400" in responses:
            documented = responses.get("400")
            if documented is None:
                responses["400"] = _body(FIELD_ERRORS, "Invalid input: what is wrong with which field.", media)
            else:  # keep the endpoint's own shape, and admit DRF's field → messages shape beside it
                for content in documented.get("content", {}).values():
                    content["schema"] = {"anyOf": [content["schema"], FIELD_ERRORS]}
        return responses


# Serializer field classes → the Python types JSON gives for that JSON type (bool is never a number), and its name.
JSON_TYPES = (
    (serializers.BooleanField, (bool,), "boolean"),
    (serializers.IntegerField, (int,), "integer"),
    (serializers.FloatField | serializers.DecimalField, (int, float), "number"),
    (serializers.CharField | serializers.ChoiceField, (str,), "string"),
)


class StrictJSONTypes:
    """Serializer mixin: each writable text, integer, number or boolean field takes only that JSON type."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or data.get(name) is None:
                    continue
                value = data[name]
                for fields, types, json_type in JSON_TYPES:
                    if isinstance(field, fields):
                        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                            errors[name] = [f"must be a JSON {json_type}, got {type(value).__name__}"]
                        break
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


NO_NUL = "^[^\\u0000]*$"


def forbid_nul_characters(result, generator, request, public):
    """Give every free-text string in the schema the pattern 'no NUL character'."""

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and not ({"pattern", "format", "enum"} & node.keys()):
                node["pattern"] = NO_NUL
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result.get("components", {}))
    walk(result.get("paths", {}))
    return result


@csrf_exempt  # like every API view: a stray session cookie must not turn this 404 into CSRF's HTML 403
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse({"detail": "No such endpoint."}, status=404)
