"""Request types for annotations: what a view may assume once its login check has passed."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    """A request behind `login_required` (or `staff_required`): its user has logged in."""

    user: User


class AuthenticatedRequest(Request):
    """An API request behind `IsAuthenticated` (the API's default): its user has logged in."""

    user: User
