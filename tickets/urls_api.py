"""REST API v1 URLs."""

from django.urls import path  # noqa: F401

from tickets import apis  # noqa: F401

app_name = "api"

urlpatterns: list = [
    # --- password resend (api) ---
    # --- modify personal information (api) ---
    # --- opt-out (api) ---
    # --- tickets resource, staff actions, health, schema (api) ---
]
