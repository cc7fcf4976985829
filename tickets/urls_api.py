"""REST API v1 URLs."""

from django.urls import URLPattern, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.views import APIView

from helpdesk.api import same_for_everyone
from tickets.api import actions, auth, requests, system, tickets

app_name = "api"
# A ticket reference (tickets.models.new_reference); anything else never reaches a view.
_REFERENCE = r"HD-[0-9A-Z]{8}"


def _ticket_path(suffix: str, view: type[APIView], name: str) -> URLPattern:
    """tickets/<reference>/<suffix>: only a well-formed reference reaches the view."""
    return re_path(rf"^tickets/(?P<reference>{_REFERENCE})/{suffix}$", view.as_view(), name=name)


urlpatterns: list = [
    # --- password resend (api) ---
    path(
        "requests/password-resend/",
        requests.PasswordResendRequestApi.as_view(),
        name="password-resend",
    ),
    # --- modify personal information (api) ---
    path("requests/modify/", requests.ModifyRequestApi.as_view(), name="request-modify"),
    path("verify/", requests.VerifyApi.as_view(), name="verify"),
    # --- opt-out (api) ---
    path("requests/opt-out/", requests.OptOutRequestApi.as_view(), name="request-opt-out"),
    # --- tickets resource, staff actions, health, schema (api) ---
    path("tickets/", tickets.TicketListApi.as_view(), name="ticket-list"),
    _ticket_path("", tickets.TicketDetailApi, "ticket"),
    _ticket_path("messages/", tickets.TicketMessageAddApi, "ticket-messages"),
    _ticket_path("confirm/", tickets.TicketConfirmApi, "ticket-confirm"),
    _ticket_path("assign/", actions.TicketAssignApi, "ticket-assign"),
    _ticket_path("approve/", actions.TicketApproveApi, "ticket-approve"),
    _ticket_path("reject/", actions.TicketRejectApi, "ticket-reject"),
    _ticket_path("resolve/", actions.TicketResolveApi, "ticket-resolve"),
    path("health/", same_for_everyone(system.HealthApi.as_view()), name="health"),
    path("auth/token/", auth.ApiTokenApi.as_view(), name="auth-token"),
    path("auth/tokens/", auth.ApiTokenListApi.as_view(), name="auth-tokens"),
    path(
        "auth/tokens/<int:token_id>/",
        auth.ApiTokenRevokeApi.as_view(),
        name="auth-token-revoke",
    ),
    path("schema/", same_for_everyone(SpectacularAPIView.as_view()), name="schema"),
    path(
        "docs/",
        same_for_everyone(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema", template_name="api/swagger_ui.html"
            )
        ),
        name="docs",
    ),
    # Last: any other path under /api/v1/ is a JSON 404, never the HTML page.
    re_path(r"^", system.api_not_found, name="not-found"),
]
