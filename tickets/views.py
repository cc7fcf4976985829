"""Portal views: parse the form, call one service, render."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


# --- general help (portal) ---

# --- password resend (portal) ---

# --- modify personal information (portal) ---

# --- opt-out and unsubscribe (portal) ---

# --- my tickets (portal) ---
