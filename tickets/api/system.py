"""Health, and the JSON 404 for any other path under the API."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api import RETRY_AFTER_HEADER, MonitoringExemptThrottle, api_errors
from helpdesk.health import STATUSES as HEALTH_STATUSES
from helpdesk.health import health_check, healthy

API_NOT_FOUND = "No such API endpoint."


class HealthApi(APIView):
    """Readiness, for monitoring (no login): what the help desk depends on, and the backlog.

    Load balancers probe `/healthz` (liveness) instead: this answers 503 during a Redis outage
    that the app itself rides out.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [MonitoringExemptThrottle]

    @extend_schema_serializer(component_name="Health")
    class OutputSerializer(serializers.Serializer):
        database = serializers.ChoiceField(choices=HEALTH_STATUSES)
        broker = serializers.ChoiceField(choices=HEALTH_STATUSES)
        cache = serializers.ChoiceField(choices=HEALTH_STATUSES)
        sweeps = serializers.ChoiceField(
            choices=HEALTH_STATUSES, help_text="`down` when no periodic task ran lately (beat)"
        )
        oldest_pending_notification_seconds = serializers.IntegerField(allow_null=True)
        last_sweep_seconds = serializers.IntegerField(allow_null=True)

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
        response = Response(status, status=200 if healthy(status) else 503)
        response["Cache-Control"] = "no-store"
        return response


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/v1/ answer JSON, like the rest of the API."""
    return JsonResponse({"detail": API_NOT_FOUND}, status=404)
