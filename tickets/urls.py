"""Portal URLs (customers and the public)."""

from django.urls import path

from tickets import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    # --- general help (portal) ---
    path("requests/new/", views.request_general, name="request-general"),
    # --- password resend (portal) ---
    path("requests/password/", views.request_password, name="request-password"),
    # --- modify personal information (portal) ---
    path("requests/modify/", views.request_modify, name="request-modify"),
    path("verify/<str:token>/", views.verify, name="verify"),
    path("not-me/<str:token>/", views.not_me, name="not-me"),
    # --- opt-out and unsubscribe (portal) ---
    path("requests/opt-out/", views.request_opt_out, name="request-opt-out"),
    path("my/preferences/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    # --- my tickets (portal) ---
    path("my/", views.my_tickets, name="my-tickets"),
    path("my/tickets/<str:reference>/", views.my_ticket, name="my-ticket"),
    path("my/tickets/<str:reference>/reply/", views.my_ticket_reply, name="my-ticket-reply"),
    path("my/tickets/<str:reference>/close/", views.my_ticket_close, name="my-ticket-close"),
]
