"""Health, and the JSON 404 for any other path under the API."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api import RETRY_AFTER_HEADER, ApiRateThrottle, api_errors
from helpdesk.health import STATUSES as HEALTH_STATUSES
from helpdesk.health import health_check

API_NOT_FOUND = "No such API endpoint."


class HealthApi(APIView):
    """Whether the database and the Celery broker answer (for monitoring; no login)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="Health")
    class OutputSerializer(serializers.Serializer):
        database = serializers.ChoiceField(choices=HEALTH_STATUSES)
        broker = serializers.ChoiceField(choices=HEALTH_STATUSES)

    @extend_schema(
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(OutputSerializer, description="Something named `down`"),
            **api_errors(429),
        },
        parameters=[RETRY_AFTER_HEADER],
        auth=[],
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        status = health_check()
        healthy = all(value == "ok" for value in status.values())
        response = Response(status, status=200 if healthy else 503)
        response["Cache-Control"] = "no-store"
        return response


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/v1/ answer JSON, like the rest of the API."""
    return JsonResponse({"detail": API_NOT_FOUND}, status=404)
