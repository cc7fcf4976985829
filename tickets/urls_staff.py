"""Staff queue URLs."""

from django.urls import path  # noqa: F401

from tickets import staff  # noqa: F401

app_name = "staff"

urlpatterns: list = [
    # --- staff queue ---
]
