"""Reads of one ticket or a list of tickets, scoped to who asks."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce

from accounts.models import Customer
from accounts.selectors import (
    customer_account_open,
    customer_for_user,
    is_staff_member,
    is_supervisor,
)
from helpdesk.joined_rows import joined_row_get
from tickets.models import (
    CHANGE_REQUEST_KINDS,
    LINKED_BY_CONTACT_KINDS,
    ActionLog,
    Attachment,
    FieldChange,
    Message,
    Satisfaction,
    Ticket,
)
from tickets.selectors.messages import message_shown_to_requester
from tickets.selectors.search import ticket_search_conditions, ticket_search_ids


@dataclass(frozen=True)
class ListWindow:
    """The rows one page of a list reads: `limit` rows in `ordering` past `after` (kwargs)."""

    ordering: tuple[str, ...]
    after: dict[str, Any]
    limit: int


def ticket_list(
    *,
    user: User | AnonymousUser,
    filters: Mapping[str, Any] | None = None,
    window: ListWindow | None = None,
) -> QuerySet[Ticket]:
    """Tickets the user may see: all for staff, their own for a customer, none otherwise.

    A customer's own are those of their record and those without one sent from their email on
    record while it was theirs (asked while logged out; see sent_from_address_on_record).

    :param window: the page the caller will read (order, cursor, size), when it pages the list
        that way: a staff search then reads only that many rows of each of its parts.
    """
    base: QuerySet[Ticket] = Ticket.objects.select_related("customer", "domain", "assignee")
    staff = is_staff_member(user)
    if filters:
        base = ticket_filters_apply(
            base, filters=filters, internal=staff, window=window if staff else None
        )
    if staff:
        return base
    customer = customer_for_user(user)
    if customer is None:
        return base.none()
    return base.filter(Q(customer=customer) | listed_by_address(customer))


def listed_by_address(customer: Customer) -> Q:
    """The tickets on no account that `customer` reads as theirs, by their email on record.

    What was asked without logging in from that address while it was theirs
    (sent_from_address_on_record); never a ticket that belongs to another customer, whatever
    contact address was typed on it. A password reset is about a domain's registrant, not
    about who asked: it is theirs to read only for one of their own domains, or its ticket (a
    domain linked, a reset sent) would tell anyone with an account which domains are in ours.

    Not a general request: one from their address is linked to them when it is made, as
    unproven (ticket_create), so one left on no account was sent while the account was frozen
    or closed, when the address was in dispute and spoke for nobody (customer_of_address). Its
    sender may be whoever took the account over: like a stranger's, it stays with staff once
    the freeze is lifted, and reaches the customer only as unproven words, by the link command.
    """
    return (
        sent_from_address_on_record(customer)
        & ~Q(kind__in=LINKED_BY_CONTACT_KINDS)
        & (~Q(kind=Ticket.Kind.RESEND_PASSWORD) | Q(domain__customer=customer))
    )


def sent_from_address_on_record(customer: Customer) -> Q:
    """Tickets without a customer sent from `customer`'s email while that address was theirs.

    An address can change hands: the customer may have taken it since (a record made later, or
    an email change applied later), and what its earlier holder asked and was answered is not
    theirs to read. So only tickets sent since the record was made and since its email last
    changed count; older ones stay with staff.
    """
    last_change = (
        FieldChange.objects.filter(
            ticket__customer_id=customer.pk, field="email", applied_at__isnull=False
        )
        .order_by("-applied_at")
        .values("applied_at")[:1]
    )
    since = Coalesce(
        Subquery(last_change), Value(customer.created_at), output_field=DateTimeField()
    )
    return Q(customer__isnull=True, contact_email__iexact=customer.email, created_at__gte=since)


def tickets_to_link_by_contact(*, customer: Customer) -> list[int]:
    """The ids of the tickets to link to `customer` by their contact address, in lock order.

    None while the account is frozen or closed: its address speaks for nobody then
    (`accounts.selectors.customer_of_address`).
    """
    if not customer_account_open(customer):
        return []
    return list(
        Ticket.objects.filter(
            sent_from_address_on_record(customer), kind__in=LINKED_BY_CONTACT_KINDS
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def customers_after(*, pk: int, limit: int) -> list[Customer]:
    """Customers by id after `pk`, `limit` of them (for sweeps in batches)."""
    return list(Customer.objects.filter(pk__gt=pk).order_by("pk")[:limit])


def ticket_get(*, user: User | AnonymousUser, reference: str) -> Ticket | None:
    """One ticket by reference if the user may see it (None otherwise: callers answer 404)."""
    staff = is_staff_member(user)
    messages = (
        Message.objects.all() if staff else Message.objects.filter(message_shown_to_requester())
    )
    return (
        ticket_list(user=user)
        .prefetch_related(
            "changes",
            Prefetch(
                "messages",
                queryset=messages.select_related("author_user").prefetch_related(
                    # Listed by name, type and size: the bytes only on download.
                    Prefetch("attachments", queryset=Attachment.objects.defer("content"))
                ),
            ),
        )
        .filter(reference=reference)
        .first()
    )


def ticket_visible_get(*, user: User | AnonymousUser, reference: str) -> Ticket | None:
    """One ticket by reference if the user may see it, without its parts (None: answer 404)."""
    return ticket_list(user=user).filter(reference=reference).first()


def customer_has_ticket(*, customer: Customer, kind: str) -> bool:
    """Whether the customer's record has a ticket of `kind` (the demo data adds one once)."""
    return Ticket.objects.filter(customer=customer, kind=kind).exists()


def ticket_events(*, ticket: Ticket) -> QuerySet[ActionLog]:
    return ActionLog.objects.filter(ticket=ticket).order_by("sequence")


# What a customer may read of its own ticket's audit trail (action and time only).
CUSTOMER_VISIBLE_EVENTS = frozenset(
    {
        "ticket.created",
        "ticket.status_changed",
        "ticket.message_added",
        "verification.sent",
        "verification.confirmed",
        "ticket.opener_confirmed",
        "customer.details_changed",
        "customer.mailing_preferences_changed",
        "resend.sent",
    }
)


def ticket_filters_apply(
    queryset: QuerySet[Ticket],
    *,
    filters: Mapping[str, Any],
    internal: bool = False,
    window: ListWindow | None = None,
) -> QuerySet[Ticket]:
    """Narrow a ticket list by the allow-listed filters: status, kind, assignee, q.

    Only these four names are read, and only their values reach the query, never a client key.
    `internal`: whether `q` searches internal notes too (staff only). `window`: the page that
    will be read of the result, which must be `queryset` narrowed by nothing else.
    """
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("kind"):
        queryset = queryset.filter(kind=filters["kind"])
    if filters.get("assignee"):
        queryset = queryset.filter(assignee__username=filters["assignee"])
    text = (filters.get("q") or "").strip()
    if text:
        if window is not None and connection.features.supports_slicing_ordering_in_compound:
            # One page of each part, each from an index of its own: the page's rows are among
            # the first rows of the parts (a word in many tickets then reads one page of them).
            first, *rest = [
                queryset.filter(condition, **window.after)
                .order_by(*window.ordering)
                .values("pk")[: window.limit]
                for condition in ticket_search_conditions(text, internal=internal)
            ]
            return queryset.filter(pk__in=first.union(*rest, all=True))
        queryset = queryset.filter(pk__in=ticket_search_ids(text, internal=internal))
    return queryset


def ticket_events_visible(*, user: User | AnonymousUser, ticket: Ticket) -> QuerySet[ActionLog]:
    """A ticket's audit rows as the user may read them: all for staff, a safe subset otherwise."""
    events = ticket_events(ticket=ticket)
    if is_staff_member(user):
        return events
    # Nor the adding of a message they are not shown (a forged email's): "message added" at a
    # time with no message would point them at it, or at staff's words about it.
    hidden = list(
        Message.objects.filter(ticket=ticket, internal=False)
        .exclude(message_shown_to_requester())
        .values_list("pk", flat=True)
    )
    if hidden:
        events = events.exclude(action="ticket.message_added", details__message__in=hidden)
    return events.filter(action__in=CUSTOMER_VISIBLE_EVENTS).only("created_at", "action")


def audit_details_visible(user: User | AnonymousUser) -> bool:
    """Whether the user reads each audit row's details: supervisors only, on every screen.

    Agents read what happened, when and by whom; the details (old and new values, reasons,
    OpenSRS's answers) are for whoever answers for the record.
    """
    return is_supervisor(user)


# What an OpenSRS call's audit row says of the work itself: the call, its try, how it went, how
# long it took. The rest (OpenSRS's response code, text and answer, what we sent) is a detail.
OPENSRS_CALL_FACTS = ("action", "object", "attempt", "outcome", "duration_ms")


def opensrs_call_details_visible(details: dict[str, Any], *, audit_details: bool) -> dict[str, Any]:
    """An `opensrs.call` audit row's details as a reader of `audit_details` may read them.

    Supervisors read all of it; agents what was done and how it went, never OpenSRS's answer.
    """
    if audit_details:
        return details
    return {key: details[key] for key in OPENSRS_CALL_FACTS if key in details}


TICKET_PAGE_RELATIONS = ("customer", "domain", "assignee")


def staff_ticket_get(*, user: User | AnonymousUser, reference: str) -> Ticket | None:
    """A ticket with what the staff ticket page shows besides its history, or None.

    Its field changes are read only for the kind that has them. The ticket it was merged into,
    if any, is read when the page asks for it: a join for the few merged tickets cost every page
    about 0.7 ms of building, planning and reading a second ticket row.
    """
    # A NUL names no ticket, and PostgreSQL refuses to look one up (the merge form's target).
    if not is_staff_member(user) or "\x00" in reference:
        return None
    # The row of select_related("customer", "domain", "assignee") by SQL made once: built and
    # compiled as a queryset on every request it took 4,200 Python calls, 370 this way (hd_bench,
    # 2026-12-08).
    ticket = joined_row_get(
        Ticket, TICKET_PAGE_RELATIONS, where="t.reference = %s", params=[reference]
    )
    if ticket is None:
        return None
    if ticket.kind in CHANGE_REQUEST_KINDS:
        prefetch_related_objects([ticket], "changes")
    return ticket


def ticket_pk_version_get(*, user: User | AnonymousUser, reference: str) -> tuple[int, int] | None:
    """The internal id and current version of a ticket, for staff polling presence."""
    if not is_staff_member(user):
        return None
    return Ticket.objects.filter(reference=reference).values_list("pk", "version").first()


def staff_ticket_exists(*, user: User | AnonymousUser, reference: str) -> bool:
    """Whether a ticket has this reference, for staff (the search box jumps to it)."""
    return is_staff_member(user) and Ticket.objects.filter(reference=reference).exists()


def staff_tickets_by_reference(
    *, user: User | AnonymousUser, references: list[str]
) -> dict[str, Ticket]:
    """The tickets of `references` a staff member may act on, by reference, in one query."""
    references = [reference for reference in references if "\x00" not in reference]
    if not is_staff_member(user) or not references:
        return {}
    return {t.reference: t for t in Ticket.objects.filter(reference__in=references)}


def ticket_counts_by_kind() -> dict[str, int]:
    """How many tickets of each kind were ever made (metrics)."""
    rows = Ticket.objects.order_by().values_list("kind").annotate(n=Count("id"))
    return {str(kind): n for kind, n in rows}


def attachment_get(
    *, user: User | AnonymousUser, reference: str, attachment_id: int
) -> Attachment | None:
    """One downloadable attachment of a ticket the user may see, on a message they may read.

    Staff see every ticket's; a customer only its own tickets', and never one on an internal
    note. Only a file the scan found clean is handed out, to anyone. Anything else is None,
    which callers answer with a 404.
    """
    attachments = Attachment.objects.filter(
        pk=attachment_id,
        scan_status=Attachment.ScanStatus.CLEAN,
        message__ticket__in=ticket_list(user=user).filter(reference=reference).values("pk"),
    )
    if not is_staff_member(user):
        attachments = attachments.filter(message_shown_to_requester("message__"))
    return attachments.first()


def attachments_for_email(*, attachment_ids: Sequence[int]) -> tuple[list[Attachment], bool]:
    """The clean attachments among `attachment_ids` (with their bytes); whether any waits.

    The second value says whether any of the others is still waiting for its scan. Infected
    ones are never among them.
    """
    rows = list(
        Attachment.objects.filter(pk__in=list(attachment_ids))
        .exclude(scan_status=Attachment.ScanStatus.INFECTED)
        .order_by("id")
    )
    clean = [a for a in rows if a.scan_status == Attachment.ScanStatus.CLEAN]
    return clean, len(clean) < len(rows)


def logins_named_in_records(*, pks: list[int]) -> bool:
    """Whether tickets, their messages or satisfaction answers name any of these logins.

    Deleting such a login would unname them (their foreign keys are SET NULL) off the audit
    chain: a ticket unassigned, a reply of nobody's. It is deactivated instead.
    """
    return (
        Ticket.objects.filter(Q(assignee__in=pks) | Q(first_response_by__in=pks)).exists()
        or Message.objects.filter(author_user__in=pks).exists()
        or Satisfaction.objects.filter(agent__in=pks).exists()
    )
