"""REST API v1 URLs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from tickets import apis

app_name = "api"
# A ticket reference (tickets.models.new_reference); anything else never reaches a view.
_REFERENCE = r"HD-[0-9A-Z]{8}"

urlpatterns: list = [
    # --- password resend (api) ---
    path(
        "requests/password-resend/",
        apis.PasswordResendRequestApi.as_view(),
        name="password-resend",
    ),
    # --- modify personal information (api) ---
    path("requests/modify/", apis.ModifyRequestApi.as_view(), name="request-modify"),
    path("verify/", apis.VerifyApi.as_view(), name="verify"),
    # --- opt-out (api) ---
    path("requests/opt-out/", apis.OptOutRequestApi.as_view(), name="request-opt-out"),
    # --- tickets resource, staff actions, health, schema (api) ---
    path("tickets/", apis.TicketListApi.as_view(), name="ticket-list"),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/$", apis.TicketDetailApi.as_view(), name="ticket"
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/messages/$",
        apis.TicketMessageAddApi.as_view(),
        name="ticket-messages",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/assign/$",
        apis.TicketAssignApi.as_view(),
        name="ticket-assign",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/approve/$",
        apis.TicketApproveApi.as_view(),
        name="ticket-approve",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/reject/$",
        apis.TicketRejectApi.as_view(),
        name="ticket-reject",
    ),
    re_path(
        rf"^tickets/(?P<reference>{_REFERENCE})/resolve/$",
        apis.TicketResolveApi.as_view(),
        name="ticket-resolve",
    ),
    path("health/", apis.HealthApi.as_view(), name="health"),
    path("auth/token/", apis.ApiTokenApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    # Last: any other path under /api/v1/ is a JSON 404, never the HTML page.
    re_path(r"^", apis.api_not_found, name="not-found"),
]
