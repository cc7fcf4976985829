"""The customer's requests (password resend, modify, opt-out) and confirming a change."""

from typing import Any

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import customer_for_user
from helpdesk.api import RETRY_AFTER_HEADER, SizedCharField, api_errors, validated_input
from helpdesk.fields import AddressSerializerField
from helpdesk.ratelimit import client_ip
from tickets.models import Ticket
from tickets.redaction import CARD_NOTICE
from tickets.services import (
    OPT_OUT_LISTS,
    RESEND_DETAIL,
    modify_input_has_card,
    request_modify,
    request_opt_out,
    request_password_resend,
    verification_confirm,
)


def _anonymous_request_schema(
    input_serializer: type[serializers.Serializer],
    output_serializer: type[serializers.Serializer],
    *,
    status: int = 202,
) -> Any:
    """The schema of a request anyone may send, without credentials: its answer, or 400 or 429."""
    return extend_schema(
        request=input_serializer,
        responses={status: output_serializer, **api_errors(400, 429)},
        parameters=[RETRY_AFTER_HEADER],
        auth=[],
        tags=["requests"],
    )


def _anonymous_via_api(request: Request) -> dict[str, Any]:
    """What the service logging a request sent by API without credentials is told of its sender.

    The input serializers' fields bear the services' keyword names, so a view passes its
    validated input on as it is, with these.
    """
    return {"client_key": client_ip(request), "actor": "anonymous", "channel": Ticket.Channel.API}


class AnonymousRequestApi(APIView):
    """A request anyone may send: no credentials needed, none read."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class PasswordResendRequestApi(AnonymousRequestApi):
    """Ask for a domain's password reset link (anyone; the same answer for every domain)."""

    class InputSerializer(serializers.Serializer):
        domain = SizedCharField(max_length=300, trim_whitespace=True)
        contact_email = AddressSerializerField(required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        detail = serializers.CharField()

    @_anonymous_request_schema(InputSerializer, OutputSerializer)
    def post(self, request: Request) -> Response:
        ticket = request_password_resend(
            **validated_input(self.InputSerializer, request.data),
            **_anonymous_via_api(request),
            language=getattr(request, "LANGUAGE_CODE", None),
        )
        return Response(
            {"reference": ticket.reference, "detail": gettext(RESEND_DETAIL)}, status=202
        )


class ModifyRequestApi(APIView):
    """Ask for a change of personal information (anyone; a logged-in customer needs no email)."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="ModifyRequestInput")
    class InputSerializer(serializers.Serializer):
        email = AddressSerializerField(required=False, allow_blank=True)
        changes = serializers.DictField(
            child=SizedCharField(max_length=1000, allow_blank=True, trim_whitespace=False)
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
        data = validated_input(self.InputSerializer, request.data)
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


class VerifyApi(AnonymousRequestApi):
    """Use the token from a verification email (no login: the token is the proof)."""

    @extend_schema_serializer(component_name="VerifyInput")
    class InputSerializer(serializers.Serializer):
        token = SizedCharField(max_length=200)

    @extend_schema_serializer(component_name="VerifyOutput")
    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        status = serializers.CharField()

    @_anonymous_request_schema(InputSerializer, OutputSerializer, status=200)
    def post(self, request: Request) -> Response:
        ticket = verification_confirm(
            **validated_input(self.InputSerializer, request.data),
            client_key=client_ip(request),
            actor="anonymous",
        )
        return Response({"reference": ticket.reference, "status": ticket.status})


class OptOutRequestApi(AnonymousRequestApi):
    """Ask to stop mailings (anyone; a link goes to the email on record, same answer for all)."""

    @extend_schema_serializer(component_name="OptOutRequestInput")
    class InputSerializer(serializers.Serializer):
        email = AddressSerializerField()
        lists = serializers.ListField(
            child=serializers.ChoiceField(choices=OPT_OUT_LISTS), allow_empty=False, max_length=2
        )

    @extend_schema_serializer(component_name="OptOutRequestOutput")
    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()

    @_anonymous_request_schema(InputSerializer, OutputSerializer)
    def post(self, request: Request) -> Response:
        ticket = request_opt_out(
            **validated_input(self.InputSerializer, request.data), **_anonymous_via_api(request)
        )
        return Response({"reference": ticket.reference}, status=202)
