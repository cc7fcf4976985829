"""Portal logins' password reset: one outbox row per request, and the worker's lookup behind it.

Every valid address costs the requester the same one row (`password_reset_request`); the worker
looks the logins up and mails each its link (`password_reset_resolve`), through the outbox like
every email.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.lock_objects import user_limits_lock
from accounts.selectors import customer_for_user, password_reset_logins
from helpdesk.links import site_url
from tickets.audit import audit_record
from tickets.models import Notification
from tickets.services.lifecycle import typed_address_card_refusal
from tickets.services.outbox import PASSWORD_RESET_LOOKUP, notification_queue


@transaction.atomic
def password_reset_mail_queue(*, user: User, link: str, hours: int) -> None:
    """Queue the portal password-reset email for a login; the worker sends it."""
    customer = customer_for_user(user)
    notification_queue(
        template="password_reset",
        recipient=user.email,
        context={"link": link, "hours": hours, "username": user.get_username()},
        language=customer.language if customer else settings.LANGUAGE_CODE,
    )
    audit_record(
        actor="anonymous",
        action="account.password_reset_mailed",
        customer=customer,
        details={"user": user.get_username()},
    )


def password_reset_request(*, email: str) -> None:
    """Queue a password-reset request: one outbox row, whether or not a login has `email`.

    The worker looks the logins up (`password_reset_resolve`) when it handles that row. An
    address holding a card number is refused (ValidationError keyed `email`): the row would
    keep it, and a card number is stored nowhere; no login's address holds one.
    """
    typed_address_card_refusal(email)
    notification_queue(template=PASSWORD_RESET_LOOKUP, recipient=email, context={})


def password_reset_resolve(*, email: str) -> int:
    """Mail a reset link to each login `password_reset_logins` finds; how many were mailed.

    A login whose account is frozen gets none (nor does the address it now has). Past the
    per-address limit a login gets no further link: the last one still works, and
    the request is not refused (coalesced, like every per-target limit).
    """
    limit, seconds = settings.RATE_LIMITS["request_per_email"]
    since = timezone.now() - timedelta(seconds=seconds)
    mailed = 0
    for user in password_reset_logins(email=email):
        # Counted under the login's lock: two lookups at once for it cannot both pass the limit.
        user_limits_lock(user=user)
        recent = Notification.objects.filter(
            template="password_reset", recipient__iexact=user.email, created_at__gt=since
        ).count()
        if recent >= limit:
            continue
        link = site_url(
            "accounts:password_reset_confirm",
            uidb64=urlsafe_base64_encode(force_bytes(user.pk)),
            token=default_token_generator.make_token(user),
        )
        password_reset_mail_queue(
            user=user,
            link=link,
            hours=max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
        )
        mailed += 1
    return mailed
