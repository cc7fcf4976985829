"""Portal URLs (customers and the public)."""

from django.urls import path

from tickets.views import (
    common,
    mailing,
    modify,
    my_tickets,
    registration,
    requests,
    satisfaction,
    status_page,
)

app_name = "portal"


def _done(prefix: str, page: str):
    """A form's result page (POST-redirect-GET), at <prefix>done/."""
    return path(f"{prefix}done/", common.done, {"page": page}, name=f"{page}-done")


urlpatterns = [
    path("", common.home, name="home"),
    # --- general help (portal) ---
    path("requests/new/", requests.request_general, name="request-general"),
    _done("requests/new/", "request-general"),
    # --- password resend (portal) ---
    path("requests/password/", requests.request_password, name="request-password"),
    _done("requests/password/", "request-password"),
    # --- modify personal information (portal) ---
    path("requests/modify/", modify.request_modify, name="request-modify"),
    _done("requests/modify/", "request-modify"),
    # Before verify/<token>/ and not-me/<token>/, which would take "done" for a token.
    _done("verify/", "verify"),
    _done("not-me/", "not-me"),
    path("verify/<str:token>/", modify.verify, name="verify"),
    path("not-me/<str:token>/", modify.not_me, name="not-me"),
    # --- registration records (the one-click link of a registration warning) ---
    _done("requests/registration/", "registration-fix"),
    path(
        "requests/registration/<str:token>/",
        registration.registration_fix,
        name="registration-fix",
    ),
    # --- opt-out and unsubscribe (portal) ---
    path("requests/opt-out/", mailing.request_opt_out, name="request-opt-out"),
    _done("requests/opt-out/", "request-opt-out"),
    path("my/preferences/", mailing.preferences, name="preferences"),
    _done("unsubscribe/", "unsubscribe"),
    path("unsubscribe/<str:token>/", mailing.unsubscribe, name="unsubscribe"),
    # --- following a request without an account (portal) ---
    path("track/", status_page.track, name="track"),
    _done("track/", "track"),  # before track/<token>/, which would take "done" for a token
    path("track/<str:token>/", status_page.track_status, name="track-status"),
    path("track/<str:token>/reply/", status_page.track_reply, name="track-reply"),
    path("track/<str:token>/confirm/", status_page.track_confirm, name="track-confirm"),
    path(
        "track/<str:token>/attachments/<int:attachment_id>/",
        status_page.track_attachment,
        name="track-attachment",
    ),
    # --- "Did this solve it?" from the resolution email (portal) ---
    path(
        "satisfaction/<str:token>/<str:answer>/",
        satisfaction.satisfaction,
        name="satisfaction",
    ),
    # --- my tickets (portal) ---
    path("my/", my_tickets.my_tickets, name="my-tickets"),
    path("my/tickets/<str:reference>/", my_tickets.my_ticket, name="my-ticket"),
    path("my/tickets/<str:reference>/reply/", my_tickets.my_ticket_reply, name="my-ticket-reply"),
    path("my/tickets/<str:reference>/close/", my_tickets.my_ticket_close, name="my-ticket-close"),
    path(
        "my/tickets/<str:reference>/confirm/",
        my_tickets.my_ticket_confirm,
        name="my-ticket-confirm",
    ),
    path(
        "my/tickets/<str:reference>/attachments/<int:attachment_id>/",
        my_tickets.my_ticket_attachment,
        name="my-ticket-attachment",
    ),
]
