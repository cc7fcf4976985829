"""Writes about customers and staff."""

import logging
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from typing import Any, Literal, NamedTuple

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model, password_validation
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.lock_objects import user_lock
from accounts.models import ApiToken, Customer, LoginState
from accounts.roles import ROLE_PERMISSIONS
from accounts.selectors import (
    ACCOUNT_STATUSES_LOCKED_OUT,
    STAFF_LIST_VERSION_KEY,
    api_token_list,
    customer_account_open,
    customer_for_user,
    customer_get_by_email,
    customer_of_login,
    group_access_read,
    login_access_read,
    login_with_address_exists,
)
from helpdesk.exceptions import CACHE_DOWN_ERRORS, ApplicationError
from helpdesk.ratelimit import rate_limit_hit
from helpdesk.validators import ADDRESS_INVALID, address_valid, without_control_characters
from tickets.audit import Actor, audit_record
from tickets.redaction import redact_card_numbers

logger = logging.getLogger(__name__)


def _staff_list_version_move() -> None:
    try:
        cache.set(STAFF_LIST_VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("staff list version not moved, cache unreachable: %s", exc)


def staff_list_changed() -> None:
    """Let the staff list kept in the cache go (`staff_member_list`): who may be staff changed.

    Its version moves now, for the reads of this transaction, and again once committed: a list
    read by another request in between, from the rows before the commit, is not kept past it.
    """
    _staff_list_version_move()
    transaction.on_commit(_staff_list_version_move)


def roles_ensure() -> dict[str, Group]:
    """Create the staff groups with their permissions (idempotent)."""
    groups = {}
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)
        groups[name] = group
    staff_list_changed()
    return groups


LOGIN_ADDRESS_OF_CUSTOMER = gettext_noop(
    "{address} is the email on record of customer {number}: only that customer's own login "
    "may use it, however it is written."
)
LOGIN_ADDRESS_OF_LOGIN = gettext_noop(
    "Another login already uses {address}, however it is written: a password reset for it "
    "would reach both."
)


def login_addresses_refusal(*, user: User, customer: Customer | None) -> dict[str, str]:
    """Why `user` may not hold its email or username (one holding an @): {field: why}.

    Each must be an address by the one rule (`helpdesk.validators.address_valid`).

    An address, compared canonically (case, Unicode width, IDNA), may be a customer's email
    on record only for that customer's own login (`customer`, or None for any other login),
    and only one login may hold it. Otherwise a password reset for the address mails the
    customer a link for another login (a staff one), and a sign-in by it reaches an account
    its owner never made.
    """
    addresses = {"email": user.email or ""}
    username = user.get_username() or ""  # None on a form whose username was refused
    if "@" in username:
        addresses["username"] = username
    refusals = {}
    for field, address in addresses.items():
        if not address:
            continue
        if not address_valid(address):
            # The one rule for addresses: a reset mailed to it could reach another mailbox.
            refusals[field] = gettext(ADDRESS_INVALID)
            continue
        owner = customer_get_by_email(email=address)
        if owner is not None and (customer is None or owner.pk != customer.pk):
            why = gettext(LOGIN_ADDRESS_OF_CUSTOMER).format(address=address, number=owner.number)
            refusals[field] = why
        elif login_with_address_exists(address=address, exclude_pk=user.pk):
            refusals[field] = gettext(LOGIN_ADDRESS_OF_LOGIN).format(address=address)
    return refusals


def login_addresses_check(*, user: User, customer: Customer | None) -> None:
    """Raise ValidationError, by field, when `login_addresses_refusal` refuses the login."""
    refusals = login_addresses_refusal(user=user, customer=customer)
    if refusals:
        raise ValidationError(refusals)


LOGIN_OF_CUSTOMER_NO_STAFF_ROLE = gettext_noop(
    "This is the portal login of customer {number}: a customer's login holds no staff status, "
    "superuser status, staff role or permission. Give the person a staff login of their own."
)


def login_roles_refusal(
    *,
    user: User,
    customer: Customer | None,
    groups: Iterable[Group] | None = None,
    permissions: Iterable[Permission] | None = None,
) -> str:
    """Why `user` may not hold its staff flags, groups or permissions, or "" when it may.

    A customer's login (`customer`: the customer it belongs to, or None for any other login)
    holds none of them. Otherwise it would read every customer's record as staff, and a
    supervisor's role would let its owner approve the changes to their own record.
    :param groups: the groups the login is given (a form's, before they are saved); None
        reads the saved ones. `permissions` likewise.
    """
    if customer is None:
        return ""
    saved = user.pk is not None
    has_groups = bool(groups) if groups is not None else saved and user.groups.exists()
    has_permissions = (
        bool(permissions) if permissions is not None else saved and user.user_permissions.exists()
    )
    if user.is_staff or user.is_superuser or has_groups or has_permissions:
        return gettext(LOGIN_OF_CUSTOMER_NO_STAFF_ROLE).format(number=customer.number)
    return ""


def login_roles_check(*, user: User, customer: Customer | None) -> None:
    """Raise ValidationError when `login_roles_refusal` refuses the login as saved."""
    refusal = login_roles_refusal(user=user, customer=customer)
    if refusal:
        raise ValidationError(refusal)


def _login_ensure(
    *, username: str, password: str, customer: Customer | None = None, **fields: Any
) -> User:
    """Create or refresh the login `username` with these `fields` and this password.

    `customer`: the customer whose login this is (or becomes); None for any other login.
    """
    user = get_user_model().objects.filter(username=username).first() or User(username=username)
    for name, value in fields.items():
        setattr(user, name, value)
    login_addresses_check(user=user, customer=customer)
    if customer is None and user.pk is not None:
        customer = customer_of_login(user)  # a login named as a staff one may be a customer's
    login_roles_check(user=user, customer=customer)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def staff_user_ensure(
    *, username: str, password: str, role: str | None, superuser: bool = False
) -> User:
    """Create or refresh a staff login in a role."""
    user = _login_ensure(
        username=username, password=password, is_staff=True, is_superuser=superuser
    )
    if role:
        user.groups.set([roles_ensure()[role]])
    staff_list_changed()
    return user


def _address_free_check(address: str) -> None:
    """Refuse (on `email`) an address that a login holds, for a customer or login to be made."""
    if login_with_address_exists(address=address):
        message = gettext(LOGIN_ADDRESS_OF_LOGIN).format(address=address)
        raise ValidationError({"email": [message]})


@transaction.atomic
def customer_ensure(
    *, email: str, full_name: str, password: str | None = None, **fields: Any
) -> Customer:
    """Create or refresh a customer (and a portal login when a password is given).

    An address on record already, however written, is that customer. An address another
    login holds is refused (ValidationError on `email`): that login is not the customer's.
    """
    customer = customer_get_by_email(email=email)
    if customer is None:
        customer = Customer(email=email, full_name=full_name, **fields)
        customer.full_clean()
        _address_free_check(email)
        customer.save()
    if password:
        login = customer.user
        if login is None:
            _address_free_check(customer.email)
        user = _login_ensure(
            username=login.get_username() if login else customer.email,
            password=password,
            customer=customer,
            email=customer.email,
            is_staff=False,
        )
        if customer.user_id != user.pk:
            customer.user = user
            customer.save(update_fields=["user", "updated_at"])
        staff_list_changed()  # a login of that name, staff before, is a customer's now
    return customer


# --- portal accounts: language ---


@transaction.atomic
def customer_language_set(*, customer: Customer, language: str) -> Customer:
    """Remember the language a customer chose, for the portal and for their emails.

    Counted with the mailing preferences (RateLimited past it): each change is an audit row.
    Choosing the language already held changes and counts nothing.
    """
    if language not in Customer.Language.values:
        raise ValidationError({"language": f"Unknown language {language!r}."})
    if customer.language == language:
        return customer
    rate_limit_hit(scope="preferences_per_customer", key=str(customer.pk))
    old = customer.language
    customer.language = language
    customer.save(update_fields=["language", "updated_at"])
    audit_record(
        actor=customer,
        action="customer.language_changed",
        customer=customer,
        details={"from": old, "to": language},
    )
    return customer


PASSWORD_OWNER_ONLY = gettext_noop(
    "A customer's password is set by the customer alone: send them a password reset (it is "
    "mailed to the email on record), or turn password-based login off."
)


def password_set_refusal(*, user: User, actor: Actor, password: str | None) -> str:
    """Why `actor` may not give `user` this password, or "" when it may.

    A customer's login takes a new password from its owner only (their own session, or the
    reset link mailed to the email on record). Set by anyone else, it would let them sign in
    as the customer, whose session is the owner's verification for a change of the record.
    Turning password login off (`password=None`) stays open to the admin.
    """
    if password is None or (isinstance(actor, User) and actor.pk == user.pk):
        return ""
    return gettext(PASSWORD_OWNER_ONLY) if customer_of_login(user) is not None else ""


PASSWORD_SET_ACTIONS = {
    "reset": "account.password_reset",
    "change": "account.password_changed",
    "disable": "account.password_disabled",
}


@transaction.atomic
def user_password_set(
    *,
    user: User,
    password: str | None,
    actor: Actor,
    how: Literal["reset", "change", "disable"],
    keep_session_key: str | None = None,
) -> User:
    """Set a login's new password and take back every credential issued under the old one.

    `password=None` (with `how="disable"`) turns password login off, as the admin can.
    Deletes the user's API token and ends their other sessions (all but `keep_session_key`, the
    request's own), then writes one audit row; the password itself is never recorded.
    """
    if (password is None) != (how == "disable"):
        raise ValueError("a password is given exactly when the login is not being disabled")
    refusal = password_set_refusal(user=user, actor=actor, password=password)
    if refusal:
        raise ApplicationError(refusal)
    if password is None:
        user.set_unusable_password()
    else:
        password_validation.validate_password(password, user)
        user.set_password(password)
    user.save(update_fields=["password"])
    revoked = {
        "api_tokens": int(api_token_revoke(user=user)),
        "sessions": _user_sessions_end(user_id=user.pk, keep_session_key=keep_session_key),
    }
    audit_record(
        actor=actor,
        action=PASSWORD_SET_ACTIONS[how],
        customer=customer_for_user(user),
        details={"user": user.get_username(), "credentials_revoked": revoked},
    )
    return user


def _user_sessions_end(*, user_id: int, keep_session_key: str | None) -> int:
    """Delete the user's stored sessions except one; how many were deleted.

    Only database-backed engines (db, cached_db) can be searched. Whatever the engine, Django
    already refuses a session whose stored password hash no longer matches the user's
    (`get_session_auth_hash`), so after a password change a session this cannot find still
    ends at its next request.
    """
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store_class, DatabaseSessionStore):
        return 0
    # Session data is encoded, so it is read in Python: a scan of the unexpired sessions, fine
    # for something as rare as a password change and the same on SQLite and PostgreSQL.
    unexpired = (
        store_class.get_model_class()
        .objects.filter(expire_date__gt=timezone.now())
        .exclude(session_key=keep_session_key or "")
    )
    keys = [
        session.session_key
        for session in unexpired.iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user_id)
    ]
    for key in keys:
        store_class(session_key=key).delete()  # with cached_db, its cache entry too
    return len(keys)


# --- api tokens ---

API_TOKEN_LOCKED_OUT = gettext_noop(
    "This account is suspended; it gets no API token until the suspension is lifted."
)
API_TOKEN_LIMIT_REACHED = gettext_noop(
    "You have {limit} API tokens, the most allowed. Revoke one you no longer use first."
)
API_TOKEN_PASSWORD_CHANGED = gettext_noop(
    "The password of this login changed as the token was asked for; sign in with the new one."
)


class CredentialsOutdated(ApplicationError):
    """The password a caller signed in with is no longer the login's (HTTP 401)."""

    status_code = 401


# --- logins and roles changed in the Django admin (superusers only) ---


def _access_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


@transaction.atomic  # a save in autocommit (a shell) appends to the chain too
def login_reactivated(*, user_id: int) -> None:
    """Count that login `user_id` is let sign in again after it could not; take back its keys.

    Its password and flags come back as they were, so its device cookies' version would too:
    the count moves it on (accounts.login_devices), and a cookie issued before the lock-out
    counts no more after it. Every path that lets a login back in saves its row or its
    customer's, whose saving counts it (`login_saving`, `customer_saving`): the admin, a
    supervisor lifting a freeze, a data fix in the shell.
    """
    LoginState.objects.get_or_create(user_id=user_id)
    LoginState.objects.filter(user_id=user_id).update(
        reactivations=F("reactivations") + 1, updated_at=timezone.now()
    )
    # Its API tokens and sessions would come back with it: whatever was taken while it was off,
    # or before (the reason it was turned off, often), would open it again. Its owner signs in
    # anew.
    user = User.objects.get(pk=user_id)
    revoked = {
        "api_tokens": api_token_revoke(user=user),
        "sessions": _user_sessions_end(user_id=user_id, keep_session_key=None),
    }
    if any(revoked.values()):
        audit_record(
            actor=None,
            action="account.credentials_revoked",
            customer=customer_of_login(user),
            details={"user": user.get_username(), "credentials_revoked": revoked},
        )


# The columns of a login that decide whether it is on the staff list (`staff_member_logins`)
# and how it is shown there.
STAFF_LIST_FIELDS = ("is_active", "is_staff", "is_superuser", "username")


def login_saving(*, user: User, update_fields: Iterable[str] | None) -> None:
    """Before a login's row is saved: count it let back in, let the staff list go if it moves.

    Counted if the stored row was inactive; the staff list goes if the save changes who is on
    it. Compared with the stored row, not with the one loaded: whatever the saving code read (the
    admin, a service, a shell, a data fix), a login made active again by this save is counted
    once, and a login turned off or made staff is offered as such from the next read on
    (accounts.receivers).
    """
    if user._state.adding:
        if user.is_staff or user.is_superuser:
            staff_list_changed()
        return
    if update_fields is not None and not set(update_fields) & set(STAFF_LIST_FIELDS):
        return
    stored = User.objects.filter(pk=user.pk).values_list(*STAFF_LIST_FIELDS).first()
    if stored is None:
        return
    if tuple(getattr(user, name) for name in STAFF_LIST_FIELDS) != stored:
        staff_list_changed()
    if user.is_active and stored[0] is False:
        login_reactivated(user_id=user.pk)


def login_deleted(*, user: User) -> None:
    """After a login's row is deleted, whoever deleted it: off the staff list if it was on it."""
    if user.is_staff or user.is_superuser:
        staff_list_changed()


def customer_saving(*, customer: Customer, update_fields: Iterable[str] | None) -> None:
    """Before a customer's row is saved: count its login let back in if the account reopens.

    A frozen or closed account made open again, by a supervisor lifting the freeze or by a
    data fix, lets its login sign in again (accounts.receivers).
    """
    if customer._state.adding or customer.user_id is None:
        return
    if not customer_account_open(customer):
        return
    if update_fields is not None and "account_status" not in update_fields:
        return
    stored = (
        Customer.objects.filter(pk=customer.pk).values_list("account_status", flat=True).first()
    )
    if stored in ACCOUNT_STATUSES_LOCKED_OUT:
        login_reactivated(user_id=customer.user_id)


@transaction.atomic
def login_change_record(
    *,
    user: User,
    actor: Actor,
    before: dict[str, Any] | None,
    password_replaced: bool = False,
) -> None:
    """Put a login made or changed in the admin or by a command on the audit chain.

    :param before: `login_access_read` of the login before the change; None for a new one.
    :param password_replaced: its stored password was written over (never said with what).
    """
    staff_list_changed()
    after = login_access_read(user)
    changes = _access_changes(before or {}, after)
    if password_replaced and before is not None:
        changes["password"] = {"from": "set", "to": "replaced"}
    if not changes:
        return
    audit_record(
        actor=actor,
        action="account.user_created" if before is None else "account.user_changed",
        customer=customer_of_login(user),
        details={"user": user.get_username(), "changes": changes},
    )


@transaction.atomic
def login_delete_record(*, user: User, actor: User) -> None:
    """Put a login about to be deleted in the admin on the audit chain (before it goes).

    The staff list lets it go once deleted (`login_deleted`), as for every other deletion.
    """
    audit_record(
        actor=actor,
        action="account.user_deleted",
        customer=customer_of_login(user),
        details={"user": user.get_username()},
    )


@transaction.atomic
def role_change_record(*, group: Group, actor: User, before: dict[str, Any] | None) -> None:
    """Put a staff role (group) made or changed in the admin on the audit chain.

    What the change does to the staff list is let go by the change itself (accounts.receivers).
    """
    changes = _access_changes(before or {}, group_access_read(group))
    if changes:
        audit_record(
            actor=actor,
            action="account.role_created" if before is None else "account.role_changed",
            details={"group": group.name, "changes": changes},
        )


@transaction.atomic
def role_delete_record(*, group: Group, actor: User) -> None:
    audit_record(actor=actor, action="account.role_deleted", details={"group": group.name})


API_TOKEN_BAD_TTL = gettext_noop("A token lasts from 1 to {days} days.")


class IssuedApiToken(NamedTuple):
    token: ApiToken
    key: str  # shown once, to its owner; only its digest is stored


def api_token_default_name() -> str:
    """The name a token gets when its owner gives none: when it was made."""
    return gettext("API token of {date}").format(
        date=timezone.localtime().strftime("%Y-%m-%d %H:%M")
    )


def _api_token_audit(user: User, action: str, **details: Any) -> None:
    """An audit row about a login's tokens: never a key, which is not kept anywhere."""
    audit_record(
        actor=user,
        action=action,
        customer=customer_for_user(user),
        details={"user": user.get_username(), **details},
    )


@transaction.atomic
def api_token_issue(*, user: User, name: str = "", ttl_days: int | None = None) -> IssuedApiToken:
    """A new named API token for the user, valid `ttl_days` (the default TTL when None).

    The key is returned once and never stored or logged: only its digest is kept.
    """
    days = settings.API_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    if not 1 <= days <= settings.API_TOKEN_MAX_TTL_DAYS:
        message = gettext(API_TOKEN_BAD_TTL).format(days=settings.API_TOKEN_MAX_TTL_DAYS)
        raise ValidationError({"expires_in_days": [message]})
    # Locked, so two requests at once cannot both pass the limit, and a freeze (which saves the
    # login) is either seen here or revokes this token after it.
    locked = user_lock(pk=user.pk)
    # `user` is the login as its password was checked (by the form, or the session's hash): a
    # reset or change committed since took back every token, and this one would outlive it.
    if locked.password != user.password:
        raise CredentialsOutdated(API_TOKEN_PASSWORD_CHANGED)
    if not customer_account_open(customer_of_login(user)):
        raise ApplicationError(gettext(API_TOKEN_LOCKED_OUT))
    if api_token_list(user=user).count() >= settings.API_TOKENS_PER_USER:
        limit = settings.API_TOKENS_PER_USER
        raise ApplicationError(gettext(API_TOKEN_LIMIT_REACHED).format(limit=limit))
    name = redact_card_numbers(" ".join((name or "").split()))[0][:100] or api_token_default_name()
    try:
        without_control_characters(name)  # knox's create() runs no validators
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    token, key = ApiToken.objects.create(user=user, expiry=timedelta(days=days), name=name)
    expires_at = token.expiry.isoformat() if token.expiry else None
    _api_token_audit(user, "api_token.issued", token=token.pk, name=name, expires_at=expires_at)
    return IssuedApiToken(token, key)


@transaction.atomic
def api_token_revoke(*, user: User, token_id: int | None = None) -> int:
    """Delete one of the user's API tokens (by id), or all when `token_id` is None; how many.

    Another user's token id deletes nothing, as an unknown one does.
    """
    # The login's row lock, as api_token_issue takes it: a token issued at the same moment is
    # then either made before this reads the tokens (and revoked) or after this commits.
    user_lock(pk=user.pk)
    tokens = ApiToken.objects.filter(user=user)
    if token_id is not None:
        tokens = tokens.filter(pk=token_id)
    revoked = list(tokens.order_by("pk").values_list("pk", "name"))
    if revoked:
        ApiToken.objects.filter(pk__in=[pk for pk, _ in revoked]).delete()
        tokens_revoked = [{"token": pk, "name": name} for pk, name in revoked]
        _api_token_audit(user, "api_token.revoked", tokens=tokens_revoked)
    return len(revoked)


@transaction.atomic
def user_credentials_revoke(*, user: User) -> dict[str, int]:
    """Take back everything a login was issued: API token, sessions, and its password.

    For an account taken over: whoever holds the login is signed out everywhere. The account
    is frozen, so no reset link is mailed until a supervisor lifts the freeze; then the owner
    sets a new password through one, mailed to the email on record.
    """
    # A random password, not an unusable one: Django's reset form skips unusable ones. Changing
    # it also ends the sessions an engine without a table still holds. Saved first: the login's
    # row is locked before the tokens' audit row (the order in tickets.lock_objects).
    user.set_password(secrets.token_urlsafe(32))
    user.save(update_fields=["password"])
    sessions_ended = _user_sessions_end(user_id=user.pk, keep_session_key=None)
    tokens_revoked = api_token_revoke(user=user)
    return {"api_tokens": tokens_revoked, "sessions": sessions_ended}
