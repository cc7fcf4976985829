"""API tokens: issue one (for a username and password, or a session), list yours, revoke."""

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.login_devices import login_device_cookie_set
from accounts.models import ApiToken
from accounts.selectors import api_token_list
from accounts.services import api_token_issue, api_token_revoke
from helpdesk.api import (
    RETRY_AFTER_HEADER,
    ApiRateThrottle,
    SizedCharField,
    api_errors,
    validated_input,
)
from helpdesk.ratelimit import client_ip, login_attempt_count, login_succeeded
from helpdesk.types import AuthenticatedRequest

LOGIN_INVALID = "Unable to log in with the username and password given."
LOGIN_NEEDED = "Log in first, or give your username and password."
TOKEN_MAKES_NO_TOKEN = "A token cannot make a token: log in or give your password."  # noqa: S105
TOKEN_NOT_FOUND = "No such API token."  # noqa: S105 - a message, not a secret


@extend_schema_serializer(component_name="ApiTokenInfo")
class ApiTokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField(source="created")
    expires_at = serializers.DateTimeField(source="expiry", allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


def _current_token_id(request: Request) -> int | None:
    return request.auth.pk if isinstance(request.auth, ApiToken) else None


class ApiTokenApi(APIView):
    """Get a new API token (by session, or username and password), or revoke the one in use."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="ApiTokenInput")
    class InputSerializer(serializers.Serializer):
        username = SizedCharField(max_length=150, required=False)
        password = serializers.CharField(
            max_length=128, required=False, trim_whitespace=False, style={"input_type": "password"}
        )
        name = serializers.CharField(
            max_length=100, required=False, help_text="What the token is for; a date if none."
        )
        expires_in_days = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=settings.API_TOKEN_MAX_TTL_DAYS,
            help_text=f"Days until it stops working (default {settings.API_TOKEN_TTL_DAYS}).",
        )

    @extend_schema_serializer(component_name="ApiToken")
    class OutputSerializer(ApiTokenOutputSerializer):
        token = serializers.CharField(
            help_text="Send it as `Authorization: Token <token>`. Shown this once: only a hash "
            "of it is kept."
        )

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
        data = validated_input(self.InputSerializer, request.data)
        username = data.get("username", "")
        password = data.get("password", "")
        if username or password:
            client = client_ip(request)
            # A client that keeps cookies (a browser, a script's cookie jar) is given and may
            # send back the same device cookie as the login pages; without one, the usual limits.
            device = request.COOKIES.get(settings.LOGIN_DEVICE_COOKIE_NAME)
            login_attempt_count(client=client, username=username, device_cookie=device)
            user = authenticate(request._request, username=username, password=password)
            if user is None:
                raise AuthenticationFailed(LOGIN_INVALID)
            login_succeeded(client=client, username=username, device_cookie=device)
        elif _current_token_id(request) is not None:
            # Else whoever copied a token could keep a successor to it past its expiry and its
            # revocation.
            raise PermissionDenied(TOKEN_MAKES_NO_TOKEN)
        elif request.user.is_authenticated:
            user = request.user
        else:
            raise NotAuthenticated(LOGIN_NEEDED)
        issued = api_token_issue(
            user=user, name=data.get("name", ""), ttl_days=data.get("expires_in_days")
        )
        response = Response({**ApiTokenOutputSerializer(issued.token).data, "token": issued.key})
        if username or password:
            login_device_cookie_set(response, user=user)
        return response

    @extend_schema(
        request=None,
        responses={204: None, **api_errors(401, 403, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["auth"],
        description="Revoke the token this request is made with; with a session, all of them.",
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        api_token_revoke(user=request.user, token_id=_current_token_id(request))
        return Response(status=204)


class ApiTokenListApi(APIView):
    """Your API tokens that still work, newest first: names and dates, never the keys."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="ApiTokenListed")
    class OutputSerializer(ApiTokenOutputSerializer):
        current = serializers.BooleanField(help_text="The token this request is made with")

    @extend_schema(
        responses={200: OutputSerializer(many=True), **api_errors(401, 403, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["auth"],
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        current = _current_token_id(request)
        tokens = list(api_token_list(user=request.user))
        for token in tokens:
            token.current = token.pk == current
        return Response(self.OutputSerializer(tokens, many=True).data)


class ApiTokenRevokeApi(APIView):
    """Revoke one of your API tokens; another login's token is a 404."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema(
        request=None,
        responses={204: None, **api_errors(401, 403, 404, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["auth"],
    )
    def delete(self, request: AuthenticatedRequest, token_id: int) -> Response:
        if not api_token_revoke(user=request.user, token_id=token_id):
            raise NotFound(TOKEN_NOT_FOUND)
        return Response(status=204)
