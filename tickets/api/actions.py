"""Staff actions on a ticket: assign, approve, reject, resolve."""

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import staff_member_logins
from helpdesk.api import RETRY_AFTER_HEADER, ApiRateThrottle, SizedCharField, api_errors
from helpdesk.types import AuthenticatedRequest
from tickets.api.tickets import (
    ETAG_HEADER,
    TicketOutputSerializer,
    VersionedInput,
    staff_action_input,
    ticket_response,
)
from tickets.models import Ticket
from tickets.services import ticket_approve, ticket_assign, ticket_reject, ticket_resolve


class StaffActionApi(APIView):
    """A staff action that is one service call; the ticket as it now is, or an error.

    The service is called as `service(ticket=, actor=, expected_version=)` with the other
    fields of `InputSerializer` as further arguments: the input's fields bear the service's
    names, as the staff pages' forms do.
    """

    throttle_classes = [ApiRateThrottle]
    InputSerializer: type[VersionedInput]
    service: Callable[..., Ticket]

    def post(self, request: AuthenticatedRequest, reference: str) -> Response:
        ticket, data = staff_action_input(request, reference, self.InputSerializer)
        version = data.pop("version", None)
        ticket = self.service(ticket=ticket, actor=request.user, expected_version=version, **data)
        return ticket_response(ticket, staff=True)  # staff_action_input let staff alone through


def staff_action_schema(view: type[StaffActionApi]) -> Any:
    """The schema of a staff action: its input, then the ticket as it now is or an error."""
    return extend_schema(
        request=view.InputSerializer,
        responses={200: TicketOutputSerializer, **api_errors(400, 401, 403, 404, 409, 429)},
        parameters=[ETAG_HEADER, RETRY_AFTER_HEADER],
        tags=["staff"],
    )(view)


@staff_action_schema
class TicketAssignApi(StaffActionApi):
    """Staff: give the ticket to a staff member (or to nobody, with null)."""

    @extend_schema_serializer(component_name="TicketAssignInput")
    class InputSerializer(VersionedInput):
        assignee = serializers.SlugRelatedField(
            slug_field="username",
            queryset=staff_member_logins().select_related("customer"),
            allow_null=True,
            help_text="A staff username, or null to unassign",
        )

    service = staticmethod(ticket_assign)


@staff_action_schema
class TicketApproveApi(StaffActionApi):
    """Staff: approve what the ticket asks for (a change of details); 409 if nothing to approve."""

    @extend_schema_serializer(component_name="TicketApproveInput")
    class InputSerializer(VersionedInput):
        pass

    service = staticmethod(ticket_approve)


@staff_action_schema
class TicketRejectApi(StaffActionApi):
    """Staff: refuse the request; the requester is told the reason."""

    @extend_schema_serializer(component_name="TicketRejectInput")
    class InputSerializer(VersionedInput):
        reason = SizedCharField(max_length=2000)

    service = staticmethod(ticket_reject)


@staff_action_schema
class TicketResolveApi(StaffActionApi):
    """Staff: mark the ticket resolved; the requester is told, with the note if given."""

    @extend_schema_serializer(component_name="TicketResolveInput")
    class InputSerializer(VersionedInput):
        note = SizedCharField(max_length=2000, required=False, allow_blank=True)

    service = staticmethod(ticket_resolve)
