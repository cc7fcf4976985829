"""REST API v1: one APIView per operation, each calling one service or selector."""

from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import customer_for_user, email_canonical, is_staff_member
from accounts.services import api_token_issue, api_token_revoke
from helpdesk.api import RETRY_AFTER_HEADER, ApiRateThrottle, TicketCursorPagination, api_errors
from helpdesk.health import STATUSES as HEALTH_STATUSES
from helpdesk.health import health_check
from helpdesk.ratelimit import client_ip, rate_limit_hit
from helpdesk.types import AuthenticatedRequest
from tickets.models import Message, Ticket
from tickets.redaction import CARD_NOTICE
from tickets.selectors import (
    ticket_events_visible,
    ticket_get,
    ticket_list,
)
from tickets.services import (
    OPT_OUT_LISTS,
    RESEND_DETAIL,
    modify_input_has_card,
    request_modify,
    request_opt_out,
    request_password_resend,
    ticket_approve,
    ticket_assign,
    ticket_reject,
    ticket_reply_add,
    ticket_resolve,
    verification_confirm,
)

# --- password resend (api) ---


class PasswordResendRequestApi(APIView):
    """Ask for a domain's password reset link (anyone; the same answer for every domain)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        domain = serializers.CharField(max_length=300, trim_whitespace=True)
        contact_email = serializers.EmailField(max_length=254, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        detail = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer, **api_errors(400, 429)},
        parameters=[RETRY_AFTER_HEADER],
        auth=[],
        tags=["requests"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ticket = request_password_resend(
            domain=data["domain"],
            contact_email=data.get("contact_email", ""),
            client_key=client_ip(request),
            actor="anonymous",
            channel=Ticket.Channel.API,
            language=getattr(request, "LANGUAGE_CODE", None),
        )
        return Response(
            {"reference": ticket.reference, "detail": gettext(RESEND_DETAIL)}, status=202
        )


# --- modify personal information (api) ---


class ModifyRequestApi(APIView):
    """Ask for a change of personal information (anyone; a logged-in customer needs no email)."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="ModifyRequestInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254, required=False, allow_blank=True)
        changes = serializers.DictField(
            child=serializers.CharField(max_length=1000, allow_blank=True, trim_whitespace=False)
        )
        note = serializers.CharField(
            max_length=5000, required=False, allow_blank=True, trim_whitespace=False
        )

    @extend_schema_serializer(component_name="ModifyRequestOutput")
    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer, **api_errors(400, 401, 403, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["requests"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = customer_for_user(request.user)
        ticket = request_modify(
            email=data.get("email") or None,
            customer=customer,
            changes=data["changes"],
            note=data.get("note", ""),
            client_key=client_ip(request),
            actor=customer or "anonymous",
            channel=Ticket.Channel.API,
        )
        body = {"reference": ticket.reference, "status": ticket.status}
        if modify_input_has_card(changes=data["changes"], note=data.get("note", "")):
            body["detail"] = gettext(CARD_NOTICE)
        return Response(body, status=202)


class VerifyApi(APIView):
    """Use the token from a verification email (no login: the token is the proof)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="VerifyInput")
    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=200)

    @extend_schema_serializer(component_name="VerifyOutput")
    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **api_errors(400, 429)},
        parameters=[RETRY_AFTER_HEADER],
        auth=[],
        tags=["requests"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = verification_confirm(
            token=serializer.validated_data["token"],
            client_key=client_ip(request),
            actor="anonymous",
        )
        return Response({"reference": ticket.reference, "status": ticket.status})


# --- opt-out (api) ---


class OptOutRequestApi(APIView):
    """Ask to stop mailings (anyone; a link goes to the email on record, same answer for all)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="OptOutRequestInput")
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        lists = serializers.ListField(
            child=serializers.ChoiceField(choices=OPT_OUT_LISTS), allow_empty=False, max_length=2
        )

    @extend_schema_serializer(component_name="OptOutRequestOutput")
    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer, **api_errors(400, 429)},
        parameters=[RETRY_AFTER_HEADER],
        auth=[],
        tags=["requests"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ticket = request_opt_out(
            email=data["email"],
            lists=data["lists"],
            client_key=client_ip(request),
            actor="anonymous",
            channel=Ticket.Channel.API,
        )
        return Response({"reference": ticket.reference}, status=202)


# --- tickets resource, staff actions, health (api) ---


TICKET_NOT_FOUND = "No such ticket."
STAFF_ONLY = "Only help-desk staff can do this."
INTERNAL_STAFF_ONLY = "Only help-desk staff can add internal notes."
LOGIN_INVALID = "Unable to log in with the username and password given."
LOGIN_NEEDED = "Log in first, or give your username and password."
API_NOT_FOUND = "No such API endpoint."
_VERSION_HELP = "The ticket version you last read (its ETag); a stale one is refused."
_ETAG_HEADER = OpenApiParameter(
    name="ETag",
    type=str,
    location=OpenApiParameter.HEADER,
    response=[200],
    description="The ticket's version, to send back as `version` with a change",
)


class _VersionedInput(serializers.Serializer):
    """The input of a change to a ticket: `version` guards against overwriting newer work."""

    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text=_VERSION_HELP
    )


def _ticket_visible(request: Request, reference: str) -> Ticket:
    """The ticket if the caller may see it; another customer's ticket is a 404, not a 403."""
    ticket = ticket_list(user=request.user).filter(reference=reference).first()
    if ticket is None:
        raise NotFound(TICKET_NOT_FOUND)
    return ticket


def _require_staff(user) -> None:
    if not (is_staff_member(user) and user.has_perm("tickets.work_ticket")):
        raise PermissionDenied(STAFF_ONLY)


def _staff_action_input(
    request: Request, reference: str, serializer_class: type[serializers.Serializer]
) -> tuple[Ticket, dict[str, Any]]:
    """The ticket a staff action is for and its validated input (404, 403, 400 in that order)."""
    ticket = _ticket_visible(request, reference)
    _require_staff(request.user)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return ticket, serializer.validated_data


def _ticket_response(ticket: Ticket) -> Response:
    response = Response(TicketOutputSerializer(ticket).data)
    response["ETag"] = f'"{ticket.version}"'
    return response


@extend_schema_serializer(component_name="Ticket")
class TicketOutputSerializer(serializers.Serializer):
    reference = serializers.CharField()
    kind = serializers.ChoiceField(choices=Ticket.Kind.choices)
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    subject = serializers.CharField()
    customer = serializers.CharField(source="customer.number", allow_null=True)
    domain = serializers.CharField(source="domain.name", allow_null=True)
    assignee = serializers.CharField(source="assignee.username", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="TicketChange")
class TicketChangeOutputSerializer(serializers.Serializer):
    field = serializers.CharField()
    old_value = serializers.CharField()
    new_value = serializers.CharField()
    applied_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="TicketMessage")
class TicketMessageOutputSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    author = serializers.ChoiceField(choices=Message.Author.choices)
    channel = serializers.ChoiceField(choices=Ticket.Channel.choices)
    internal = serializers.BooleanField()
    body = serializers.CharField()


@extend_schema_serializer(component_name="TicketEvent")
class TicketEventOutputSerializer(serializers.Serializer):
    """An audit row; a customer gets only `action` and `created_at`."""

    sequence = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(required=False)
    action = serializers.CharField()
    details = serializers.DictField(required=False)

    def to_representation(self, instance):
        if self.context.get("staff"):
            return super().to_representation(instance)
        return {
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
            "action": instance.action,
        }


class TicketListApi(APIView):
    """The tickets the caller may see, newest first (staff: all; a customer: its own)."""

    pagination_class = TicketCursorPagination
    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketFilter")
    class FilterSerializer(serializers.Serializer):
        # An empty value means "any": `?status=&kind=&assignee=&q=`, as the contract writes it.
        status = serializers.ChoiceField(
            choices=Ticket.Status.choices, required=False, allow_blank=True
        )
        kind = serializers.ChoiceField(
            choices=Ticket.Kind.choices, required=False, allow_blank=True
        )
        assignee = serializers.RegexField(
            r"^[\w.@+-]*\Z",
            max_length=150,
            required=False,
            allow_blank=True,
            help_text="A staff username",
        )
        q = serializers.CharField(
            max_length=200,
            required=False,
            allow_blank=True,
            help_text="Reference, or text in the subject, domain or contact email",
        )

    @extend_schema(
        parameters=[FilterSerializer, RETRY_AFTER_HEADER],
        responses={200: TicketOutputSerializer(many=True), **api_errors(400, 401, 404, 429)},
        tags=["tickets"],
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        # A plain dict: every value given is validated, none silently skipped.
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        tickets = ticket_list(user=request.user, filters=filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(tickets, request, view=self)
        return paginator.get_paginated_response(TicketOutputSerializer(page, many=True).data)


class TicketDetailApi(APIView):
    """One ticket with its requested changes, its messages and its history."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketDetail")
    class OutputSerializer(TicketOutputSerializer):
        changes = TicketChangeOutputSerializer(many=True)
        messages = TicketMessageOutputSerializer(many=True)
        events = serializers.SerializerMethodField()

        @extend_schema_field(TicketEventOutputSerializer(many=True))
        def get_events(self, ticket: Ticket) -> list:
            return TicketEventOutputSerializer(  # type: ignore[return-value]  # many=True gives a ListSerializer, whose .data is a list; drf-stubs says ReturnDict
                self.context["events"], many=True, context=self.context
            ).data

    @extend_schema(
        responses={200: OutputSerializer, **api_errors(401, 404, 429)},
        parameters=[_ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["tickets"],
    )
    def get(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket = ticket_get(user=request.user, reference=reference)
        if ticket is None:
            raise NotFound(TICKET_NOT_FOUND)
        context = {
            "staff": is_staff_member(request.user),
            "events": ticket_events_visible(user=request.user, ticket=ticket),
        }
        response = Response(self.OutputSerializer(ticket, context=context).data)
        response["ETag"] = f'"{ticket.version}"'
        return response


class TicketMessageAddApi(APIView):
    """Add a message to a ticket: the customer's reply, or staff's reply or internal note."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketMessageInput")
    class InputSerializer(_VersionedInput):
        body = serializers.CharField(max_length=20000, trim_whitespace=False)
        internal = serializers.BooleanField(
            default=False, help_text="Staff only: a note the customer never sees"
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: TicketMessageOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[RETRY_AFTER_HEADER],
        tags=["tickets"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket = _ticket_visible(request, reference)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        staff = is_staff_member(request.user)
        if data["internal"] and not staff:
            raise ValidationError({"internal": [INTERNAL_STAFF_ONLY]})
        message = ticket_reply_add(
            ticket=ticket,
            body=data["body"],
            actor=request.user if staff else customer_for_user(request.user),
            author=Message.Author.STAFF if staff else Message.Author.CUSTOMER,
            channel=Ticket.Channel.API,
            author_user=request.user,
            internal=data["internal"],
            expected_version=data.get("version"),
        )
        return Response(TicketMessageOutputSerializer(message).data, status=201)


class TicketAssignApi(APIView):
    """Staff: give the ticket to a staff member (or to nobody, with null)."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketAssignInput")
    class InputSerializer(_VersionedInput):
        assignee = serializers.SlugRelatedField(
            slug_field="username",
            queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
            allow_null=True,
            help_text="A staff username, or null to unassign",
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[_ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = _staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_assign(
            ticket=ticket,
            assignee=data["assignee"],
            actor=request.user,
            expected_version=data.get("version"),
        )
        return _ticket_response(ticket)


class TicketApproveApi(APIView):
    """Staff: approve what the ticket asks for (a change of details); 409 if nothing to approve."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketApproveInput")
    class InputSerializer(_VersionedInput):
        pass

    @extend_schema(
        request=InputSerializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[_ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = _staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_approve(
            ticket=ticket, actor=request.user, expected_version=data.get("version")
        )
        return _ticket_response(ticket)


class TicketRejectApi(APIView):
    """Staff: refuse the request; the requester is told the reason."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketRejectInput")
    class InputSerializer(_VersionedInput):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[_ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = _staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_reject(
            ticket=ticket,
            actor=request.user,
            reason=data["reason"],
            expected_version=data.get("version"),
        )
        return _ticket_response(ticket)


class TicketResolveApi(APIView):
    """Staff: mark the ticket resolved; the requester is told, with the note if given."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketResolveInput")
    class InputSerializer(_VersionedInput):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[_ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = _staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_resolve(
            ticket=ticket,
            actor=request.user,
            note=data.get("note", ""),
            expected_version=data.get("version"),
        )
        return _ticket_response(ticket)


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
            rate_limit_hit(scope="login_per_client", key=f"ip:{client_ip(request)}")
            rate_limit_hit(scope="login_per_client", key=f"user:{email_canonical(username)}")
            user = authenticate(request._request, username=username, password=password)
            if user is None:
                raise AuthenticationFailed(LOGIN_INVALID)
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


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/v1/ answer JSON, like the rest of the API."""
    return JsonResponse({"detail": API_NOT_FOUND}, status=404)
