"""Reads about customers and staff."""

import logging
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeGuard, cast

from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import ApiToken, Customer, LoginState
from domains.validators import domain_compare_form
from helpdesk.exceptions import CACHE_DOWN_ERRORS

logger = logging.getLogger(__name__)


def email_canonical(email: str) -> str:
    """Compare addresses after Unicode normalisation and case folding; never send to the result."""
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return unicodedata.normalize("NFKC", domain).casefold()
    # The domain by IDNA 2008, not case folding, which makes `faß.de` into another domain.
    return f"{unicodedata.normalize('NFKC', local).casefold()}@{domain_compare_form(domain)}"


def customer_get_by_email(*, email: str) -> Customer | None:
    """The customer whose email on record matches, compared canonically."""
    canonical = email_canonical(email)
    if not canonical or "@" not in canonical:
        return None
    for customer in Customer.objects.filter(email__iexact=canonical)[:2]:
        # iexact is ASCII-only on some backends: confirm with the same canonical form.
        if email_canonical(customer.email) == canonical:
            return customer
    return None


def customer_email_on_record(*, number: str, email: str) -> bool:
    """Whether `email` is (canonically) the email on record of customer `number`."""
    stored = Customer.objects.filter(number=number).values_list("email", flat=True).first()
    return stored is not None and email_canonical(stored) == email_canonical(email)


def login_named_exists(*, username: str) -> bool:
    """Whether a login has exactly this username."""
    return User.objects.filter(username=username).exists()


def login_with_address_exists(*, address: str, exclude_pk: int | None = None) -> bool:
    """Whether a login (other than `exclude_pk`) has `address` as its email or username.

    Compared canonically (email_canonical: case, Unicode width, IDNA), as a reset mailed to
    one spelling reaches the mailbox of every other.
    """
    canonical = email_canonical(address)
    if "@" not in canonical:
        return False
    candidates = User.objects.filter(
        Q(email__iexact=address)
        | Q(email__iexact=canonical)
        | Q(username__iexact=address)
        | Q(username__iexact=canonical)
    )
    if exclude_pk is not None:
        candidates = candidates.exclude(pk=exclude_pk)
    return any(
        canonical in (email_canonical(username), email_canonical(email))
        for username, email in candidates.values_list("username", "email")[:20]
    )


@dataclass(frozen=True)
class SharedLoginAddress:
    """An address (canonical) that more than one login holds, or a login not its customer's."""

    address: str
    logins: tuple[str, ...]  # usernames, in the order the logins were made
    customer: str | None  # the number of the customer whose email on record it is, if any


def _login_addresses(username: str, email: str) -> set[str]:
    """The addresses a login holds, compared canonically: its email, its username with an @."""
    held = {email_canonical(value) for value in (email, username) if value and "@" in value}
    return {address for address in held if "@" in address}


def login_addresses_shared(*, chunk_size: int = 2000) -> Iterator[SharedLoginAddress]:
    """Addresses held against the rule `accounts.services.login_addresses_refusal` now keeps.

    Logins made before the rule (or written around it) may share an address in another case,
    Unicode width or IDNA spelling, or hold a customer's email on record without being that
    customer's login: a password reset for the address then reaches every one of them. Read
    once through every login and every customer, in chunks; an administrator decides which
    login keeps the address.
    """
    holders: dict[str, list[tuple[int, str]]] = {}
    users = User.objects.order_by("pk").values_list("pk", "username", "email")
    for pk, username, email in users.iterator(chunk_size=chunk_size):
        for address in _login_addresses(username, email or ""):
            holders.setdefault(address, []).append((pk, username))
    owners: dict[str, tuple[str, int | None]] = {}
    customers = Customer.objects.order_by("pk").values_list("number", "email", "user_id")
    for number, email, user_id in customers.iterator(chunk_size=chunk_size):
        address = email_canonical(email or "")
        if address in holders and address not in owners:
            owners[address] = (number, user_id)
    for address, logins in sorted(holders.items()):
        owner = owners.get(address)
        foreign = owner is not None and any(pk != owner[1] for pk, _ in logins)
        if len(logins) > 1 or foreign:
            names = tuple(name for _, name in logins)
            yield SharedLoginAddress(address, names, owner[0] if owner else None)


@dataclass(frozen=True)
class CustomerLoginRoles:
    """A customer's portal login holding what `accounts.services.login_roles_refusal` refuses."""

    username: str
    customer: str  # the number of the customer whose login it is
    holds: tuple[str, ...]  # "staff status", "superuser status", "group agents", ...


def customer_logins_with_staff_roles(*, using: str = "default") -> list[CustomerLoginRoles]:
    """Customers' portal logins holding a staff flag, role or permission, in the order made.

    The rule refuses them on every path that writes a login (the admin's user form, the demo
    data), but logins given one before the rule, or in the database by hand, keep it until an
    administrator takes it off. None of them acts as staff (`is_staff_login`); this says which
    to settle. Expected to be none or a few: one query, and two more when there are some.
    Named columns only: `migrate` runs it before applying migrations that may add others.
    """
    logins = list(
        User.objects.using(using)
        .filter(customer__isnull=False)
        .filter(
            Q(is_staff=True)
            | Q(is_superuser=True)
            | Q(groups__isnull=False)
            | Q(user_permissions__isnull=False)
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", "username", "is_staff", "is_superuser", "customer__number")
    )
    if not logins:
        return []
    pks = [login[0] for login in logins]
    roles: dict[int, list[str]] = {pk: [] for pk in pks}
    in_groups = User.groups.through.objects.using(using).filter(user_id__in=pks)
    for user_id, name in in_groups.values_list("user_id", "group__name"):
        roles[user_id].append(f"group {name}")
    granted = User.user_permissions.through.objects.using(using).filter(user_id__in=pks)
    for user_id, app_label, codename in granted.values_list(
        "user_id", "permission__content_type__app_label", "permission__codename"
    ):
        roles[user_id].append(f"permission {app_label}.{codename}")
    return [
        CustomerLoginRoles(
            username,
            number,
            (
                *(["staff status"] if is_staff else []),
                *(["superuser status"] if is_superuser else []),
                *sorted(roles[pk]),
            ),
        )
        for pk, username, is_staff, is_superuser, number in logins
    ]


def customer_for_user(user: User | AnonymousUser | None) -> Customer | None:
    """The customer record a portal login belongs to, if any, whatever flags the login holds.

    A customer's login is never staff (is_staff_login): one holding a stale staff flag is still
    its customer's, with its portal pages, not a login of nobody's.
    """
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.customer
    except Customer.DoesNotExist:
        return None


# A customer account in these states has no way in: no sign-in, session, API token or password
# reset, until a supervisor lifts the freeze (tickets.services.freeze.account_unfreeze).
ACCOUNT_STATUSES_LOCKED_OUT = frozenset(
    {Customer.AccountStatus.SUSPENDED, Customer.AccountStatus.CLOSED}
)


def customer_account_open(customer: Customer | None) -> bool:
    """Whether the login of this customer (None: a login without one, staff) may sign in."""
    return customer is None or customer.account_status not in ACCOUNT_STATUSES_LOCKED_OUT


def customer_of_address(*, email: str) -> Customer | None:
    """The customer an address on record speaks for: none while that account is frozen or closed.

    What the address sends (a request without a login, mail our server authenticated) is filed
    on the account it belongs to. A frozen account's address is in dispute (it may be whoever
    took the account over) until a supervisor lifts the freeze, and a closed account has left:
    their requests stay with staff, on no account, as any stranger's do.
    """
    customer = customer_get_by_email(email=email)
    return customer if customer_account_open(customer) else None


def mailing_recipients(list_name: str) -> QuerySet[Customer]:
    """The customers a mailing of `list_name` goes to, when it is queued and again when it is sent.

    Subscribed, and with an open account: a closed one has left, and a frozen one's address is
    in dispute (it may be whoever took the account over) until a supervisor lifts the freeze.
    Newsletters go to resellers only.
    """
    recipients = Customer.objects.filter(**{list_name: True}).exclude(
        account_status__in=ACCOUNT_STATUSES_LOCKED_OUT
    )
    if list_name == "reseller_newsletters":
        recipients = recipients.filter(is_reseller=True)
    return recipients


def account_is_frozen(customer: Customer) -> bool:
    """Whether the account is frozen: its owner reported a change, a supervisor lifts it."""
    return customer.account_status == Customer.AccountStatus.SUSPENDED


def account_is_closed(customer: Customer) -> bool:
    """Whether the account is closed: its customer has left, and nothing on it changes."""
    return customer.account_status == Customer.AccountStatus.CLOSED


def login_reactivations(user: User) -> int:
    """How often `user` was let sign in again after it could not; 0 for one never locked out.

    Reads `user.login_state`: no query for a login loaded with `select_related("login_state")`.
    """
    try:
        return user.login_state.reactivations
    except LoginState.DoesNotExist:
        return 0


def customer_login_allowed(user: User) -> bool:
    """Whether a login may sign in, by any path: not while its customer account is locked out.

    Reads `user.customer`, whatever the login's flags say: a login loaded with
    `select_related("customer")` costs no query, and the page then finds the record loaded.
    """
    try:
        customer = user.customer
    except Customer.DoesNotExist:
        return True
    return customer_account_open(customer)


def password_reset_logins(*, email: str) -> list[User]:
    """The logins a password reset for `email` is mailed to.

    Django's choice (active, with a usable password, the same address) less the logins that
    may not sign in: a frozen account gets no link, and the requester sees no difference. The
    address of a customer on record resets that customer's own login only: another login
    holding it (given it before the login address rule) would have its link mailed to them.
    """
    owner = customer_get_by_email(email=email)
    return [
        user
        for user in auth_forms.PasswordResetForm().get_users(email)
        if customer_login_allowed(user) and (owner is None or user.pk == owner.user_id)
    ]


WORK_TICKET = "tickets.work_ticket"


def login_is_customers(user: User) -> bool:
    """Whether `user` is a customer's portal login, whatever its flags say.

    Reads `user.customer` (customer_for_user): no query for a login loaded with
    `select_related("customer")`, as every request's is (the login backend's `get_user`, the
    API token's check).
    """
    return customer_for_user(user) is not None


def is_staff_login(user: User | AnonymousUser | None) -> TypeGuard[User]:
    """An active login with the staff flag that is no customer's: the admin lets it in.

    A customer's portal login holds no staff flag (accounts.services.login_roles_refusal); one
    that has it all the same (given before that rule, or written into the database) is still a
    customer's login, never staff: not in the admin, the staff pages or the staff API.
    """
    return bool(
        user
        and user.is_authenticated
        and user.is_staff
        and user.is_active
        and not login_is_customers(user)
    )


def is_staff_member(user: User | AnonymousUser | None) -> TypeGuard[User]:
    """An active login in a staff role: the staff flag alone only lets a login into the admin.

    Every staff page, the staff API and the services' staff checks ask this: a customer's
    login is never a staff member, whatever flags, roles or permissions it holds.
    """
    return is_staff_login(user) and user.has_perm(WORK_TICKET)


# The logins granted a permission, themselves or through one of their groups. Written out, as
# an uncorrelated IN: the staff list (on every staff ticket and queue page) took 1.7 ms with
# Django's `with_perm` (one correlated EXISTS over five joins), 2.4 ms with two EXISTS, 0.9 ms
# with this, 0.4 ms with the staff flag alone (hd_bench_s, medians of 200 runs interleaved in
# one process, three processes, 2026-12-06; bench/README.md).
LOGINS_WITH_PERMISSION_SQL = """
    SELECT up.user_id FROM auth_user_user_permissions up
    JOIN auth_permission p ON p.id = up.permission_id
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE ct.app_label = %s AND p.codename = %s
    UNION
    SELECT ug.user_id FROM auth_user_groups ug
    JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
    JOIN auth_permission p ON p.id = gp.permission_id
    JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE ct.app_label = %s AND p.codename = %s
"""


def staff_member_logins() -> QuerySet[User]:
    """The logins `is_staff_member` accepts, in one query: who a ticket can be assigned to.

    Active, with the staff flag, no customer's, and the permission to work tickets (superusers
    have every permission).
    """
    app_label, codename = WORK_TICKET.split(".")
    granted = RawSQL(LOGINS_WITH_PERMISSION_SQL, [app_label, codename] * 2)  # noqa: S611 - constant SQL
    return User.objects.filter(
        Q(is_superuser=True) | Q(pk__in=granted),
        is_staff=True,
        is_active=True,
        customer__isnull=True,
    )


class StaffMember(NamedTuple):
    pk: int
    username: str


# The staff list is on every staff ticket page (the assignee list and presence) and the queue:
# kept in the cache, it spares them a query (0.6 ms as the driver sees it, and 1,900 of the
# ticket page's 29,800 Python calls, 2026-12-07). It is kept beside the version it was read
# under; the accounts services move the version on every change of a login or a role
# (`staff_list_changed`), and so does every save or deletion of a login and every role or
# permission given or taken, whoever makes it (accounts.receivers), so a list read before a
# change is not offered after it. The timeout bounds how long what sends no signal (a queryset
# update or delete, raw SQL) or a version lost with an unreachable cache may go unseen;
# assigning checks the login again whatever the list says.
STAFF_LIST_KEY = "staff-list"
STAFF_LIST_VERSION_KEY = "staff-list-version"
STAFF_LIST_SECONDS = 60


def staff_member_list() -> list[StaffMember]:
    """The logins `staff_member_logins` gives, by username, as (pk, username).

    From the cache when it holds them under the current version, else read and kept there.
    """
    try:
        kept = cache.get_many([STAFF_LIST_VERSION_KEY, STAFF_LIST_KEY])
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("staff list cache unreachable: %s", exc)
        kept = None
    version = kept.get(STAFF_LIST_VERSION_KEY) if kept is not None else None
    entry = kept.get(STAFF_LIST_KEY) if kept is not None else None
    if version is not None and entry is not None and entry[0] == version:
        return cast(list[StaffMember], entry[1])
    members = [
        StaffMember(pk, username)
        for pk, username in staff_member_logins().order_by("username").values_list("pk", "username")
    ]
    if kept is not None:
        try:
            if version is None:
                # A version of our own, unless a change set one since the read above (then
                # this list may be older than it, and is not kept).
                version = uuid.uuid4().hex
                if not cache.add(STAFF_LIST_VERSION_KEY, version, timeout=None):
                    return members
            cache.set(STAFF_LIST_KEY, (version, members), timeout=STAFF_LIST_SECONDS)
        except CACHE_DOWN_ERRORS as exc:
            logger.warning("staff list cache unreachable: %s", exc)
    return members


def is_supervisor(user: User | AnonymousUser | None) -> TypeGuard[User]:
    return is_staff_member(user) and user.has_perm("tickets.approve_sensitive_change")


def customer_of_login(user: User) -> Customer | None:
    """The customer record a login belongs to, whatever the login's flags say."""
    return Customer.objects.filter(user=user).first()


def login_access_read(user: User) -> dict[str, Any]:
    """What a login is and may do, as the audit log records a change of it."""
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": _permission_names(user.user_permissions.all()),
    }


def group_access_read(group: Group) -> dict[str, Any]:
    """What a staff role is called and grants, as the audit log records a change of it."""
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


def _permission_names(permissions: QuerySet[Permission]) -> list[str]:
    rows = permissions.values_list("content_type__app_label", "codename")
    return sorted(f"{app_label}.{codename}" for app_label, codename in rows)


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's API tokens that still work, newest first (never their keys: none is kept)."""
    now = timezone.now()
    tokens = ApiToken.objects.filter(user=user).filter(Q(expiry__isnull=True) | Q(expiry__gt=now))
    return cast("QuerySet[ApiToken]", tokens)  # knox's manager has no type hints
