"""REST API v1 URLs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from tickets.api import actions, auth, requests, system, tickets

app_name = "api"
# A ticket reference (tickets.models.new_reference); anything else never reaches a view.
_REFERENCE = r"HD-[0-9A-Z]{8}"

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
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/$", tickets.TicketDetailApi.as_view(), name="ticket"
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/messages/$",
        tickets.TicketMessageAddApi.as_view(),
        name="ticket-messages",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/assign/$",
        actions.TicketAssignApi.as_view(),
        name="ticket-assign",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/approve/$",
        actions.TicketApproveApi.as_view(),
        name="ticket-approve",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/reject/$",
        actions.TicketRejectApi.as_view(),
        name="ticket-reject",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/resolve/$",
        actions.TicketResolveApi.as_view(),
        name="ticket-resolve",
    ),
    path("health/", system.HealthApi.as_view(), name="health"),
    path("auth/token/", auth.ApiTokenApi.as_view(), name="auth-token"),
    path("auth/tokens/", auth.ApiTokenListApi.as_view(), name="auth-tokens"),
    path(
        "auth/tokens/<int:token_id>/",
        auth.ApiTokenRevokeApi.as_view(),
        name="auth-token-revoke",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    # Last: any other path under /api/v1/ is a JSON 404, never the HTML page.
    re_path(r"^", system.api_not_found, name="not-found"),
]
