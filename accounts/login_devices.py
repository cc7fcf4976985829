"""Device cookies: a browser a login signed in from is known to the login limiter.

A successful login (the portal, the admin, the API token for a password) leaves a signed cookie
naming the login, a random nonce and the login's version when it was issued. An attempt for
that login carrying it is kept clear of the login's limit of failures from every client
together, which guessers spread over many addresses could otherwise fill to lock the owner out;
it is limited per nonce instead (`helpdesk.ratelimit.login_attempt_count`). The cookie proves
nothing else: it is no credential.

The version (`login_device_version`) moves with the login's password and with whether it may
sign in (active, its customer account neither frozen nor closed), whoever changed them: a
password reset or change, a freeze, the admin, a command. It moves on again when the login is
let back in (`accounts.services.login_reactivated`): the state coming back would otherwise
bring back the version of before the lock-out, and with it a copy of a cookie taken before
it that was never tried meanwhile. A failed attempt carrying a cookie of an older version
revokes it (the login backend, `helpdesk.ratelimit.login_device_revoke`): what a copy of it
was worth ends with the password or the state it was issued under.

A browser signed in to a login whose name changed since (a verified email change renames a
customer's login) holds a cookie of the old name; its next request gets one of the new name
(`login_device_renew`), so the owner's own browser still counts when they sign in again.
"""

import secrets

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.core import signing
from django.http import HttpRequest, HttpResponseBase
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.selectors import customer_login_allowed, login_reactivations

_SALT = "accounts.login_devices"
_VERSION_SALT = "accounts.login_devices.version"


def _max_age_seconds() -> int:
    return settings.LOGIN_DEVICE_COOKIE_DAYS * 24 * 60 * 60


def _payload(cookie: str | None, username: str) -> tuple[str, str] | None:
    """(nonce, version) of a device cookie issued to the login named exactly `username`."""
    if not cookie or not username:
        return None
    try:
        payload = signing.loads(cookie, salt=_SALT, max_age=_max_age_seconds())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    match payload:
        case [str(issued_to), str(nonce), str(version)] if nonce and issued_to == username:
            return nonce, version
    return None


def login_device_nonce(cookie: str | None, *, username: str) -> str | None:
    """The nonce of a device cookie issued to the login named exactly `username`, else None.

    A cookie for another login, expired, altered or signed with another key is no cookie. The
    name must match as logins are looked up, case and all: whoever has a login of their own
    named as another one but capitalised otherwise could give themselves cookies for it. Reads
    no login: whether the cookie is still of the login's version is `login_device_current`'s.
    """
    payload = _payload(cookie, username)
    return payload[0] if payload else None


def _version(user: User, secret: str) -> str:
    state = f"{user.pk}:{user.password}:{user.is_active}:{customer_login_allowed(user)}"
    reactivations = login_reactivations(user)
    if reactivations:  # a login never locked out keeps the cookies issued before the count
        state += f":{reactivations}"
    return salted_hmac(_VERSION_SALT, state, secret=secret, algorithm="sha256").hexdigest()


def login_device_version(user: User) -> str:
    """The login's version for its device cookies: it moves with its password and its state.

    A keyed hash, as Django's session hash of the password is: the cookie can be read by whoever
    holds it, and must tell them nothing of the password's hash.
    """
    return _version(user, settings.SECRET_KEY)


def login_device_current(cookie: str | None, *, user: User) -> bool:
    """Whether a device cookie was issued to `user` under its password and state as they are.

    A cookie signed with a key of SECRET_KEY_FALLBACKS keeps its version under that key.
    """
    payload = _payload(cookie, user.get_username())
    if payload is None:
        return False
    issued = payload[1]
    return any(
        constant_time_compare(issued, _version(user, secret))
        for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    )


def login_device_cookie_set(response: HttpResponseBase, *, user: User) -> None:
    """Give the browser a new device cookie for `user`; only after its password was right."""
    payload = [user.get_username(), secrets.token_hex(16), login_device_version(user)]
    response.set_cookie(
        settings.LOGIN_DEVICE_COOKIE_NAME,
        signing.dumps(payload, salt=_SALT),
        max_age=_max_age_seconds(),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def login_device_renew(request: HttpRequest, response: HttpResponseBase) -> None:
    """Give a browser signed in to a login a device cookie of it, if it holds none that counts.

    The session is worth what a correct password is: Django ends it when the password changes,
    and the login backend when the login may no longer sign in, so the cookie given here is one
    a sign-in there would give. Only a session's login: a request signed by an API token has
    none, and an API client keeps the cookie of the password it gave.
    """
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return  # no login is read for a browser that is not signed in
    if settings.LOGIN_DEVICE_COOKIE_NAME in response.cookies:
        return  # this response signed in, or out, and said what the browser keeps
    user = request.user
    if not user.is_authenticated or str(session[SESSION_KEY]) != str(user.pk):
        return
    if not login_device_current(request.COOKIES.get(settings.LOGIN_DEVICE_COOKIE_NAME), user=user):
        login_device_cookie_set(response, user=user)
