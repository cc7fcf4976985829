"""Requests made without a login: the same work for every address, the lookup in the worker.

An anonymous change or opt-out request validates its input, counts the per-client and global
limits, and writes its ticket, that ticket's audit row and an `AnonymousRequest` row (the
outbox of the work still to do), then queues one task; whether the address is on record is
not asked while the requester waits. The worker looks the customer up and continues the flow
(`modify_anonymous_continue`, `opt_out_anonymous_continue`), or keeps nothing of what was
typed when nobody has that address, or when its account is closed (whose address is told so,
with no link).
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import account_is_closed, customer_get_by_email, email_canonical
from helpdesk.exceptions import RateLimited
from helpdesk.links import site_url
from helpdesk.ratelimit import rate_limit_hits
from helpdesk.validators import address_normalised
from tickets.audit import Actor, actor_label
from tickets.lock_objects import anonymous_request_lock, customer_lock, ticket_lock
from tickets.models import AnonymousRequest, Ticket, Verification
from tickets.services.lifecycle import ticket_create, typed_address_card_refusal
from tickets.services.outbox import notification_queue
from tickets.services.publishing import tasks_publish, tasks_publish_each
from tickets.services.versions import ticket_change_save
from tickets.tasks import anonymous_request_process as anonymous_request_task

Outcome = AnonymousRequest.Outcome
EMAIL_ON_RECORD_INVALID = gettext_noop("Enter the email address we have on record for you.")
# What a closed account's email on record is mailed instead of a link.
ACCOUNT_CLOSED_TEMPLATE = "request_account_closed"


def anonymous_request_limits(*, client_key: str) -> None:
    """Count an anonymous request per client and in all; RateLimited (429) past either.

    There is no limit per address here: it would refuse a request because of whom it names.
    """
    rate_limit_hits(("request_per_client", client_key), ("request_global", "all"))


def anonymous_request_email(email: object) -> str:
    """The address an anonymous request names as the one on record, stripped.

    Only its form is judged, never whether anyone has it: ValidationError keyed `email` unless
    it could be an address on record.
    """
    try:
        email = address_normalised(email)
    except ValidationError:
        raise ValidationError({"email": [gettext(EMAIL_ON_RECORD_INVALID)]}) from None
    typed_address_card_refusal(email)
    return email


def anonymous_request_open(
    *,
    kind: str,
    subject: str,
    actor: Actor,
    channel: str,
    email: str,
    details: dict[str, Any] | None = None,
    changes: dict[str, str] | None = None,
    lists: list[str] | None = None,
    note: str = "",
) -> Ticket:
    """Open an anonymous request's ticket, awaiting verification, and keep what it asked for.

    The same rows whether or not `email` is on record; the lookup is queued once the caller
    commits.
    """
    ticket = ticket_create(
        kind=kind,
        subject=subject,
        actor=actor,
        channel=channel,
        status=Ticket.Status.AWAITING_VERIFICATION,
        details=details,
    )
    AnonymousRequest.objects.create(
        ticket=ticket,
        actor=actor_label(actor),
        email=email,
        changes=changes or {},
        lists=lists or [],
        note=note,
    )
    transaction.on_commit(
        lambda: tasks_publish(
            [(anonymous_request_task, {"ticket_id": ticket.pk})],
            what=f"anonymous request {ticket.reference}",
        )
    )
    return ticket


def anonymous_request_coalesce_with(*, customer: Customer, now: datetime) -> Ticket | None:
    """The last request that mailed `customer` a link, when one more would pass the limit.

    Counted from the links themselves (`Verification` rows to the email on record), over
    change and opt-out requests together.
    """
    limit, seconds = settings.RATE_LIMITS["request_per_email"]
    recent = _requester_links(customer=customer, since=now - timedelta(seconds=seconds))
    if recent.count() < limit:
        return None
    last = recent.select_related("ticket").order_by("-created_at", "-pk").first()
    return last.ticket if last is not None else None


def _requester_links(*, customer: Customer, since: datetime) -> QuerySet[Verification]:
    return Verification.objects.filter(
        purpose=Verification.Purpose.REQUESTER,
        ticket__customer=customer,
        ticket__kind__in=(Ticket.Kind.MODIFY_INFO, Ticket.Kind.OPT_OUT),
        created_at__gt=since,
    )


def anonymous_request_links_count(*, customer: Customer, since: datetime) -> int:
    """Links mailed to `customer`'s email on record for change and opt-out requests since then."""
    return _requester_links(customer=customer, since=since).count()


def anonymous_request_attach(*, ticket: Ticket, request: AnonymousRequest, owner: Customer) -> bool:
    """Put the owner found on the locked ticket (True), or join the request to the last one.

    Past the per-address limit the request is joined to the last one that mailed a link and
    False is returned: nothing is mailed.
    """
    last = anonymous_request_coalesce_with(customer=owner, now=timezone.now())
    if last is not None:
        request.coalesced_with = last
        return False
    ticket.customer = owner
    # The record, not what was typed: the link, notices and replies go here.
    ticket.contact_email = owner.email
    ticket.language = owner.language
    ticket_change_save(
        ticket,
        ["customer", "contact_email", "language"],
        actor="worker",
        action="ticket.owner_found",
        details={"customer": owner.number},
    )
    return True


def _account_closed_notice(*, ticket: Ticket, owner: Customer) -> str:
    """Tell a closed account's email on record that a request naming it changes nothing.

    No link: it would confirm a change nobody may apply (a closed account's changes are
    refused, and its mailings already stopped). The address is told what it can do instead,
    write to us from the help page without logging in. A frozen account's address still gets
    its link, which confirms once the freeze is lifted (`verification_locked_out`) if it has
    not expired by then; a closed account is not
    reopened. At most as many notices an hour as links (`request_per_email`), past that none.
    The ticket stays on no account and keeps nothing typed, as for an address not on record.
    """
    try:
        rate_limit_hits(("request_per_email", email_canonical(owner.email)))
    except RateLimited:
        return Outcome.ACCOUNT_CLOSED
    notification_queue(
        ticket=ticket,
        template=ACCOUNT_CLOSED_TEMPLATE,
        recipient=owner.email,
        language=owner.language,
        context={"subject": ticket.subject, "help_url": site_url("portal:request-general")},
        key=f"{ACCOUNT_CLOSED_TEMPLATE}:{ticket.pk}",
    )
    return Outcome.ACCOUNT_CLOSED


@transaction.atomic
def anonymous_request_process(*, ticket_id: int) -> str:
    """Look up the record an anonymous request names and go on with its flow; at most once.

    Idempotent by state guard: the row is locked and acted on only while `processed_at` is
    empty. Returns the outcome (`link_sent`, `no_record`, `no_change`, `coalesced`, `closed`)
    or `skipped`.
    """
    named = (
        AnonymousRequest.objects.filter(ticket_id=ticket_id, processed_at__isnull=True)
        .values_list("email", flat=True)
        .first()
    )
    if named is None:
        return "skipped"
    # The named customer's row first (customers before tickets): lookups of requests naming one
    # address then count its links one at a time, so two at once cannot both pass the limit.
    owner = customer_get_by_email(email=named)
    if owner is not None:
        customer_lock(pk=owner.pk)
    ticket = ticket_lock(pk=ticket_id)
    row = anonymous_request_lock(ticket_id=ticket_id)
    if row.processed_at is not None or ticket.status != Ticket.Status.AWAITING_VERIFICATION:
        return "skipped"
    # Imported here: both flows store their requests through this module.
    if owner is not None and account_is_closed(owner):
        outcome = _account_closed_notice(ticket=ticket, owner=owner)
    elif ticket.kind == Ticket.Kind.MODIFY_INFO:
        from tickets.services.modify import modify_anonymous_continue

        outcome = modify_anonymous_continue(ticket=ticket, request=row)
    elif ticket.kind == Ticket.Kind.OPT_OUT:
        from tickets.services.opt_out import opt_out_anonymous_continue

        outcome = opt_out_anonymous_continue(ticket=ticket, request=row)
    else:
        outcome = Outcome.NO_RECORD
    row.processed_at = timezone.now()
    row.outcome = outcome
    fields = ["processed_at", "outcome", "coalesced_with", "updated_at"]
    if outcome in (Outcome.NO_RECORD, Outcome.NO_CHANGE, Outcome.ACCOUNT_CLOSED):
        # Nothing of what was typed is kept for an address we do not hold (or no change, or a
        # closed account's: nothing of it can be applied).
        row.email, row.changes, row.note = "", {}, ""
        fields += ["email", "changes", "note"]
    row.save(update_fields=fields)
    return str(outcome)


def anonymous_requests_requeue_due(*, batch_size: int = 200) -> int:
    """Queue the lookups whose task never ran (broker down at commit); the guard stops twins."""
    cutoff = timezone.now() - settings.NOTIFICATION_SWEEP_AFTER
    due = list(
        AnonymousRequest.objects.filter(processed_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("ticket_id", flat=True)[:batch_size]
    )
    tasks_publish_each(
        anonymous_request_task, due, key="ticket_id", what="anonymous requests", sweep=True
    )
    return len(due)
