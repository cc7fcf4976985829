"""Middleware of the logins."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from accounts.login_devices import login_device_renew


class LoginDeviceMiddleware:
    """A signed-in browser keeps a device cookie of its login (accounts.login_devices)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        login_device_renew(request, response)
        return response
