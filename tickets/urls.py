"""Portal URLs (customers and the public)."""

from django.urls import path

from tickets import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    # --- general help (portal) ---
    # --- password resend (portal) ---
    # --- modify personal information (portal) ---
    # --- opt-out and unsubscribe (portal) ---
    # --- my tickets (portal) ---
]
