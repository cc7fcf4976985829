"""Device cookies: a browser a login signed in from is known to the login limiter.

A successful login (the portal, the admin, the API token for a password) leaves a signed cookie
naming the login and a random nonce. An attempt for that login carrying it is kept clear of the
login's limit of failures from every client together, which guessers spread over many addresses
could otherwise fill to lock the owner out; it is limited per nonce instead
(`helpdesk.ratelimit.login_attempt_count`). The cookie proves nothing else: it is no credential.
"""

import secrets

from django.conf import settings
from django.core import signing
from django.http import HttpResponseBase

_SALT = "accounts.login_devices"


def _max_age_seconds() -> int:
    return settings.LOGIN_DEVICE_COOKIE_DAYS * 24 * 60 * 60


def login_device_nonce(cookie: str | None, *, username: str) -> str | None:
    """The nonce of a device cookie issued to the login named exactly `username`, else None.

    A cookie for another login, expired, altered or signed with another key is no cookie. The
    name must match as logins are looked up, case and all: whoever has a login of their own
    named as another one but capitalised otherwise could give themselves cookies for it.
    """
    if not cookie or not username:
        return None
    try:
        payload = signing.loads(cookie, salt=_SALT, max_age=_max_age_seconds())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    match payload:
        case [str(issued_to), str(nonce)] if nonce and issued_to == username:
            return nonce
    return None


def login_device_cookie_set(response: HttpResponseBase, *, username: str) -> None:
    """Give the browser a new device cookie for `username`; only after its password was right."""
    response.set_cookie(
        settings.LOGIN_DEVICE_COOKIE_NAME,
        signing.dumps([username, secrets.token_hex(16)], salt=_SALT),
        max_age=_max_age_seconds(),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
