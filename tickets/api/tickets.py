"""The tickets resource: list, detail, messages; what staff actions share."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import customer_for_user, is_staff_member
from helpdesk.api import (
    RETRY_AFTER_HEADER,
    ApiRateThrottle,
    SizedCharField,
    TicketCursorPagination,
    api_errors,
    query_params_check,
    validated_input,
)
from helpdesk.types import AuthenticatedRequest
from tickets.models import Message, Ticket
from tickets.selectors.messages import HeldWords, requester_subject, ticket_held_words
from tickets.selectors.tickets import (
    ListWindow,
    audit_details_visible,
    ticket_events_visible,
    ticket_get,
    ticket_list,
    ticket_visible_get,
)
from tickets.services import ticket_opener_confirm, ticket_opener_confirmable, ticket_reply_add

TICKET_NOT_FOUND = "No such ticket."
STAFF_ONLY = "Only help-desk staff can do this."
CUSTOMER_ONLY = "Only the customer a request was sent for can confirm it."
INTERNAL_STAFF_ONLY = "Only help-desk staff can add internal notes."
_VERSION_HELP = (
    "Recommended: the ticket version you last read (its ETag). A stale one is refused with 409 "
    "and changes nothing; without it the change applies to the ticket as it is now, overwriting "
    "whatever someone else did since you read it."
)
ETAG_HEADER = OpenApiParameter(
    name="ETag",
    type=str,
    location=OpenApiParameter.HEADER,
    response=[200],
    description="The ticket's version, to send back as `version` with a change",
)


class VersionedInput(serializers.Serializer):
    """The input of a change to a ticket: `version` guards against overwriting newer work."""

    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text=_VERSION_HELP
    )


def ticket_visible(request: Request, reference: str) -> Ticket:
    """The ticket if the caller may see it; another customer's ticket is a 404, not a 403."""
    ticket = ticket_visible_get(user=request.user, reference=reference)
    if ticket is None:
        raise NotFound(TICKET_NOT_FOUND)
    return ticket


def require_staff(user: User | AnonymousUser) -> None:
    # is_staff_member is the one test of "works tickets" (it includes tickets.work_ticket).
    if not is_staff_member(user):
        raise PermissionDenied(STAFF_ONLY)


def staff_action_input(
    request: Request, reference: str, serializer_class: type[serializers.Serializer]
) -> tuple[Ticket, dict[str, Any]]:
    """The ticket a staff action is for and its validated input (404, 403, 400 in that order)."""
    ticket = ticket_visible(request, reference)
    require_staff(request.user)
    return ticket, validated_input(serializer_class, request.data)


def ticket_response(ticket: Ticket, data: Any = None, *, staff: bool) -> Response:
    """The ticket as the API shows it (or `data`, a fuller view of it), its version the ETag.

    A customer's ETag is the version of what they are shown (Ticket.requester_version), which
    they send back as `version`: it stands still for what only staff see. `staff` has no
    default: a caller says whose view it answers with.
    """
    if data is None:  # a staff action's answer
        data = TicketOutputSerializer(ticket, context={"staff": staff}).data
    response = Response(data)
    response["ETag"] = f'"{ticket.version if staff else ticket.requester_version}"'
    return response


@extend_schema_serializer(component_name="Ticket")
class TicketOutputSerializer(serializers.Serializer):
    reference = serializers.CharField()
    kind = serializers.ChoiceField(choices=Ticket.Kind.choices)
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    subject = serializers.SerializerMethodField(
        help_text=(
            "For a customer, a request sent from their address without signing in and not yet "
            "confirmed by them shows its kind and says so, in place of its sender's words"
        )
    )
    customer = serializers.CharField(source="customer.number", allow_null=True)
    domain = serializers.CharField(source="domain.name", allow_null=True)
    assignee = serializers.CharField(source="assignee.username", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.SerializerMethodField(
        help_text="For a customer, the last change they are shown (not an internal note's)"
    )
    due_at = serializers.DateTimeField(allow_null=True)

    def get_subject(self, ticket: Ticket) -> str:
        return ticket.subject if self.context.get("staff") else requester_subject(ticket)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_updated_at(self, ticket: Ticket) -> str:
        staff = self.context.get("staff")
        at = ticket.updated_at if staff else ticket.requester_updated_at
        return serializers.DateTimeField().to_representation(at)


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
    """An audit row; a customer gets only `action` and `created_at`, an agent no `details`."""

    sequence = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(required=False)
    action = serializers.CharField()
    details = serializers.DictField(required=False)

    def to_representation(self, instance):
        if self.context.get("staff"):
            event = super().to_representation(instance)
            if not self.context.get("audit_details"):
                event.pop("details", None)
            return event
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
            help_text=(
                "Reference, customer number, name or email, contact email, domain, subject"
                " or message text (internal notes for staff only)"
            ),
        )

    @extend_schema(
        parameters=[FilterSerializer, RETRY_AFTER_HEADER],
        responses={200: TicketOutputSerializer(many=True), **api_errors(400, 401, 404, 429)},
        tags=["tickets"],
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        paginator = self.pagination_class()
        allowed = {*self.FilterSerializer().fields, paginator.cursor_query_param}
        query_params_check(request, allowed={*allowed, paginator.page_size_query_param})
        # A plain dict: every value given is validated, none silently skipped.
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        window = None
        if filters.get("q"):
            ordering, after, limit = paginator.page_rows(request)
            window = ListWindow(ordering=ordering, after=after, limit=limit)
        tickets = ticket_list(user=request.user, filters=filters, window=window)
        page = paginator.paginate_queryset(tickets, request, view=self)
        context = {"staff": is_staff_member(request.user)}
        data = TicketOutputSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)


class TicketDetailApi(APIView):
    """One ticket with its requested changes, its messages and its history."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketDetail")
    class OutputSerializer(TicketOutputSerializer):
        changes = TicketChangeOutputSerializer(many=True)
        messages = TicketMessageOutputSerializer(many=True)
        events = serializers.SerializerMethodField()
        held_messages = serializers.SerializerMethodField(
            help_text=(
                "How many of the requester's messages are held from the customer, not in "
                "`messages` (their words are never shown), until they confirm the request is "
                "theirs: sent from their address without signing in, or merged in from such a "
                "request. Staff read them in `messages`, this counts them."
            )
        )
        can_confirm = serializers.SerializerMethodField(
            help_text=(
                "Whether you may confirm this request is yours now, which shows you its held "
                "words and its subject: `POST` to `confirm_url`"
            )
        )
        confirm_url = serializers.SerializerMethodField(
            help_text="Where to `POST` (no body) to confirm the request, when `can_confirm`"
        )

        def get_held_messages(self, ticket: Ticket) -> int:
            held: HeldWords = self.context["held"]
            return held.messages

        def get_can_confirm(self, ticket: Ticket) -> bool:
            return bool(self.context["can_confirm"])

        @extend_schema_field(serializers.CharField(allow_null=True))
        def get_confirm_url(self, ticket: Ticket) -> str | None:
            if not self.context["can_confirm"]:
                return None
            return reverse("api:ticket-confirm", kwargs={"reference": ticket.reference})

        @extend_schema_field(TicketEventOutputSerializer(many=True))
        def get_events(self, ticket: Ticket) -> list:
            return TicketEventOutputSerializer(  # type: ignore[return-value]  # many=True gives a ListSerializer, whose .data is a list; drf-stubs says ReturnDict
                self.context["events"], many=True, context=self.context
            ).data

    @extend_schema(
        responses={200: OutputSerializer, **api_errors(401, 404, 429)},
        parameters=[ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["tickets"],
    )
    def get(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket = ticket_get(user=request.user, reference=reference)
        if ticket is None:
            raise NotFound(TICKET_NOT_FOUND)
        staff = is_staff_member(request.user)
        customer = None if staff else customer_for_user(request.user)
        held = ticket_held_words(ticket)
        context = {
            "staff": staff,
            "audit_details": audit_details_visible(request.user),
            "events": ticket_events_visible(user=request.user, ticket=ticket),
            "held": held,
            # By the rule the confirmation itself applies, so it offers nothing it would refuse.
            "can_confirm": ticket_opener_confirmable(ticket=ticket, customer=customer, held=held),
        }
        data = self.OutputSerializer(ticket, context=context).data
        return ticket_response(ticket, data, staff=staff)


class TicketMessageAddApi(APIView):
    """Add a message to a ticket: the customer's reply, or staff's reply or internal note."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketMessageInput")
    class InputSerializer(VersionedInput):
        body = SizedCharField(max_length=20000, trim_whitespace=False)
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
        ticket = ticket_visible(request, reference)
        data = validated_input(self.InputSerializer, request.data)
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


class TicketConfirmApi(APIView):
    """The customer says a request sent from their address without signing in is theirs.

    The portal's "Yes, I sent this request": from then on they read what it says. Idempotent;
    a request of theirs on no account is a 409 ("nothing to confirm"), another customer's a 404.
    """

    throttle_classes = [ApiRateThrottle]

    @extend_schema(
        request=None,
        responses={200: TicketOutputSerializer, **api_errors(401, 403, 404, 409, 429)},
        parameters=[ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["tickets"],
    )
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket = ticket_visible(request, reference)
        customer = customer_for_user(request.user)
        if customer is None:
            raise PermissionDenied(CUSTOMER_ONLY)
        ticket = ticket_opener_confirm(ticket=ticket, customer=customer)
        return ticket_response(ticket, staff=False)
