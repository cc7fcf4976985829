"""API tokens: issue one for a username and password, revoke it."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import api_token_issue, api_token_revoke
from helpdesk.api import RETRY_AFTER_HEADER, ApiRateThrottle, api_errors
from helpdesk.ratelimit import client_ip, login_attempt_count, login_succeeded
from helpdesk.types import AuthenticatedRequest

LOGIN_INVALID = "Unable to log in with the username and password given."
LOGIN_NEEDED = "Log in first, or give your username and password."


class ApiTokenApi(APIView):
    """Get your API token (by session, or username and password in the body), or revoke it."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="ApiTokenInput")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, required=False)
        password = serializers.CharField(
            max_length=128, required=False, trim_whitespace=False, style={"input_type": "password"}
        )

    @extend_schema_serializer(component_name="ApiToken")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`")

    def get_permissions(self) -> list:
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **api_errors(400, 401, 403, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data.get("username", "")
        password = serializer.validated_data.get("password", "")
        if username or password:
            client = client_ip(request)
            login_attempt_count(client=client, username=username)
            user = authenticate(request._request, username=username, password=password)
            if user is None:
                raise AuthenticationFailed(LOGIN_INVALID)
            login_succeeded(client=client, username=username)
        elif request.user.is_authenticated:
            user = request.user
        else:
            raise NotAuthenticated(LOGIN_NEEDED)
        return Response({"token": api_token_issue(user=user)})

    @extend_schema(
        request=None,
        responses={204: None, **api_errors(401, 403, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["auth"],
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        api_token_revoke(user=request.user)
        return Response(status=204)
