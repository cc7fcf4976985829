"""Staff actions on a ticket: assign, approve, reject, resolve."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api import RETRY_AFTER_HEADER, ApiRateThrottle, SizedCharField, api_errors
from helpdesk.types import AuthenticatedRequest
from tickets.api.tickets import (
    ETAG_HEADER,
    TicketOutputSerializer,
    VersionedInput,
    staff_action_input,
    ticket_response,
)
from tickets.services import ticket_approve, ticket_assign, ticket_reject, ticket_resolve


def staff_action_schema(input_serializer: type[serializers.Serializer]) -> Any:
    """The schema of a staff action: its input, then the ticket as it now is or an error."""
    return extend_schema(
        request=input_serializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )


class TicketAssignApi(APIView):
    """Staff: give the ticket to a staff member (or to nobody, with null)."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketAssignInput")
    class InputSerializer(VersionedInput):
        assignee = serializers.SlugRelatedField(
            slug_field="username",
            queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
            allow_null=True,
            help_text="A staff username, or null to unassign",
        )

    @staff_action_schema(InputSerializer)
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_assign(
            ticket=ticket,
            assignee=data["assignee"],
            actor=request.user,
            expected_version=data.get("version"),
        )
        return ticket_response(ticket)


class TicketApproveApi(APIView):
    """Staff: approve what the ticket asks for (a change of details); 409 if nothing to approve."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketApproveInput")
    class InputSerializer(VersionedInput):
        pass

    @staff_action_schema(InputSerializer)
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_approve(
            ticket=ticket, actor=request.user, expected_version=data.get("version")
        )
        return ticket_response(ticket)


class TicketRejectApi(APIView):
    """Staff: refuse the request; the requester is told the reason."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketRejectInput")
    class InputSerializer(VersionedInput):
        reason = SizedCharField(max_length=2000)

    @staff_action_schema(InputSerializer)
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_reject(
            ticket=ticket,
            actor=request.user,
            reason=data["reason"],
            expected_version=data.get("version"),
        )
        return ticket_response(ticket)


class TicketResolveApi(APIView):
    """Staff: mark the ticket resolved; the requester is told, with the note if given."""

    throttle_classes = [ApiRateThrottle]

    @extend_schema_serializer(component_name="TicketResolveInput")
    class InputSerializer(VersionedInput):
        note = SizedCharField(max_length=2000, required=False, allow_blank=True)

    @staff_action_schema(InputSerializer)
    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = staff_action_input(request, reference, self.InputSerializer)
        ticket = ticket_resolve(
            ticket=ticket,
            actor=request.user,
            note=data.get("note", ""),
            expected_version=data.get("version"),
        )
        return ticket_response(ticket)
