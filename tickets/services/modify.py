"""Modify personal information: the field diff, its checks, approval, applying it."""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import phonenumbers
import pycountry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Exists, Field, OuterRef, Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import (
    customer_get_by_email,
    email_canonical,
    is_staff_member,
    is_supervisor,
)
from domains.validators import normalize_domain_name
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock, ticket_lock
from tickets.models import (
    OPEN_STATUS_VALUES,
    AnonymousRequest,
    FieldChange,
    Message,
    Ticket,
    Verification,
)
from tickets.redaction import REDACTED, contains_card_number, redact_card_numbers
from tickets.services.anonymous import (
    anonymous_request_attach,
    anonymous_request_limits,
    anonymous_request_store,
)
from tickets.services.attachments import (
    ATTACHMENTS_ONLY_BODY,
    AttachmentUpload,
    attachments_add,
)
from tickets.services.freeze import ACCOUNT_FROZEN, account_is_frozen, freeze_link_issue
from tickets.services.lifecycle import ticket_create
from tickets.services.outbox import notification_queue
from tickets.services.registration import (
    registration_changes_offer,
    registration_changes_queue,
    registration_choose_by_owner,
)
from tickets.services.shared import (
    CONTROL_CHARACTERS,
    OWNER_NOT_VERIFIED,
    ticket_move,
    ticket_needs_owner,
    ticket_version_check,
)
from tickets.services.verification import verification_start

S = Ticket.Status


MODIFY_FIELDS = (
    "full_name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postcode",
    "country",
)
MODIFY_LOW_RISK = frozenset(
    {"phone", "address_line1", "address_line2", "city", "state", "postcode", "country"}
)
MODIFY_SENSITIVE = frozenset({"full_name", "email"})
# The statuses in which a verified change request waits for staff.
MODIFY_APPROVABLE_STATUSES = (S.OPEN, S.AWAITING_CUSTOMER)
MODIFY_FIELD_LABELS = {
    "full_name": gettext_noop("Full name"),
    "email": gettext_noop("Email address"),
    "phone": gettext_noop("Phone"),
    "address_line1": gettext_noop("Address line 1"),
    "address_line2": gettext_noop("Address line 2"),
    "city": gettext_noop("City"),
    "state": gettext_noop("State"),
    "postcode": gettext_noop("Postcode"),
    "country": gettext_noop("Country"),
}
MODIFY_SUBJECT = gettext_noop("Change of personal information")
MODIFY_UNKNOWN_FIELD = "Unknown field: {field}"
MODIFY_NO_CHANGES = gettext_noop("Give at least one field to change and its new value.")
MODIFY_SAME_VALUES = gettext_noop(
    "These are already the details we hold; there is nothing to change."
)
MODIFY_EMAIL_ON_RECORD = gettext_noop("Enter the email address we have on record for you.")
MODIFY_INVALID_PHONE = gettext_noop("Enter a valid phone number, e.g. +60 3-1234 5678.")
MODIFY_INVALID_COUNTRY = gettext_noop("Enter a country name or its two-letter code, e.g. MY.")
MODIFY_INVALID_EMAIL = gettext_noop("Enter a valid email address.")
MODIFY_INVALID_CHARACTERS = gettext_noop("Remove the control characters from this value.")
MODIFY_REQUIRED = gettext_noop("This cannot be empty.")
MODIFY_TOO_LONG = gettext_noop("Use at most {limit} characters.")
MODIFY_STAFF_ONLY = gettext_noop("Only help-desk staff can approve changes.")
MODIFY_NEEDS_SUPERVISOR = gettext_noop(
    "Only a supervisor can approve a change of name or email address."
)
MODIFY_NEW_EMAIL_UNCONFIRMED = gettext_noop(
    "The new email address has not confirmed its link yet; the change cannot be applied."
)
MODIFY_CONFLICT = gettext_noop(
    "The details on record changed since this request was made ({fields}); nothing was applied. "
    "Reject the request and ask the customer to check their details."
)
MODIFY_EMAIL_TAKEN = gettext_noop("The new email address already belongs to another account.")
NOTHING_TO_APPROVE = gettext_noop("There is nothing to approve on this ticket.")


class ApprovalForbidden(ApplicationError):
    """The actor's role may not approve this change (HTTP 403)."""

    status_code = 403


class ModifyConflict(ApplicationError):
    """The record changed since the request; staff must look again (HTTP 409)."""

    status_code = 409


def _modify_value_error(field: str, message: str, **params: Any) -> ValidationError:
    # The code names the field so forms can show the message next to it.
    return ValidationError(
        "%(field)s: %(error)s",
        code=field,
        params={"field": field, "error": gettext(message).format(**params)},
    )


_PHONE_SHAPE = re.compile(r"\+?[0-9 ().\-/]{6,30}")


def _modify_clean_phone(value: str) -> str:
    """A phone number in E.164, from any usual way of writing it (Malaysia when no +code).

    A number is accepted when its length is possible for its country; the lite metadata's
    number ranges would refuse real numbers (even `+60 3-1234 5678`), so they are not used.
    """
    number = None
    if _PHONE_SHAPE.fullmatch(value):
        try:
            number = phonenumbers.parse(value, "MY")
        except phonenumbers.NumberParseException:
            number = None
    if (
        number is None
        or not phonenumbers.is_possible_number(number)
        or phonenumbers.region_code_for_country_code(number.country_code or 0) == "ZZ"
        or len(set(str(number.national_number))) == 1  # 0000000, 1111111
    ):
        raise _modify_value_error("phone", MODIFY_INVALID_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _modify_clean_value(field: str, raw: Any) -> str:
    """One submitted value, normalised as the record stores it; raises ValidationError."""
    if not isinstance(raw, str):
        raise _modify_value_error(field, MODIFY_REQUIRED)
    value = raw.strip()
    if CONTROL_CHARACTERS.search(value):
        raise _modify_value_error(field, MODIFY_INVALID_CHARACTERS)
    if field == "full_name":
        value = " ".join(value.split())
    elif field == "phone" and value:
        value = _modify_clean_phone(value)
    elif field == "country" and value:
        try:
            value = pycountry.countries.lookup(value).alpha_2
        except LookupError:
            raise _modify_value_error(field, MODIFY_INVALID_COUNTRY) from None
    elif field == "email" and value:
        value = _modify_clean_email(value)
    if not value and field in MODIFY_SENSITIVE:
        raise _modify_value_error(field, MODIFY_REQUIRED)
    # Every field in MODIFY_FIELDS is a CharField with a max_length.
    limit = cast(int, cast("Field[Any, Any]", Customer._meta.get_field(field)).max_length)
    if len(value) > limit:
        raise _modify_value_error(field, MODIFY_TOO_LONG, limit=limit)
    return value


def _modify_clean_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    try:
        domain = normalize_domain_name(domain)
        validate_email(f"{local}@{domain}")
    except ValidationError:
        raise _modify_value_error("email", MODIFY_INVALID_EMAIL) from None
    return f"{local}@{domain}"


def modify_input_has_card(*, changes: Any, note: str) -> bool:
    """Whether the request carried a card number (it is redacted; the requester is told)."""
    texts = [note or ""]
    if isinstance(changes, dict):
        texts += [str(k) for k in changes] + [v for v in changes.values() if isinstance(v, str)]
    return contains_card_number(*texts)


def _modify_validate(changes: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Redact card numbers, refuse unknown fields, normalise every value.

    Values typed exactly as `current` holds them are kept as they are, so an owner re-sending a
    prefilled form is not refused over a value on record that predates today's rules.
    """
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"changes": [gettext(MODIFY_NO_CHANGES)]})
    unknown = [redact_card_numbers(str(k))[0][:64] for k in changes if k not in MODIFY_FIELDS]
    if unknown:
        raise ValidationError(
            {"changes": [MODIFY_UNKNOWN_FIELD.format(field=name) for name in unknown]}
        )
    cleaned: dict[str, str] = {}
    errors: list[ValidationError] = []
    for field in MODIFY_FIELDS:
        if field not in changes:
            continue
        raw = changes[field]
        if isinstance(raw, str):
            raw = redact_card_numbers(raw)[0]
            if current is not None and raw.strip() == current[field]:
                cleaned[field] = current[field]
                continue
        try:
            cleaned[field] = _modify_clean_value(field, raw)
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError({"changes": errors})
    return cleaned


def _clean_note(note: str) -> str:
    note = redact_card_numbers(note or "")[0].replace("\x00", "")
    return note.encode("utf-8", "replace").decode("utf-8").strip()


def _customer_values(customer: Customer) -> dict[str, str]:
    return {field: getattr(customer, field) for field in MODIFY_FIELDS}


def _modify_changes_record(
    ticket: Ticket, customer: Customer, diff: dict[str, str], actor: Actor
) -> None:
    current = _customer_values(customer)
    rows = [
        FieldChange(ticket=ticket, field=field, old_value=current[field], new_value=value)
        for field, value in diff.items()
    ]
    FieldChange.objects.bulk_create(rows)
    audit_record(
        actor=actor,
        action="modify.requested",
        ticket=ticket,
        details={
            "changes": [{"field": r.field, "old": r.old_value, "new": r.new_value} for r in rows]
        },
    )
    if "email" in diff:
        registration_changes_offer(ticket=ticket, customer=customer, new_email=diff["email"])


@transaction.atomic
def request_modify(
    *,
    email: str | None,
    customer: Customer | None,
    changes: dict[str, str],
    note: str,
    client_key: str,
    actor: Actor,
    channel: str = Ticket.Channel.PORTAL,
    registration: Mapping[str, Iterable[str]] | None = None,
    attachments: Sequence[AttachmentUpload] = (),
) -> Ticket:
    """Log a change of personal information, with any proof attached (a name change's).

    A logged-in owner (`customer`) is verified by the session: the ticket opens at once. Anyone
    else gives the email on record; a link goes to that record and the answer is the same
    whether or not it exists. Raises ValidationError keyed `email` (the address given) or
    `changes` (each error's code names the field).

    :param registration: the owner's choice, domain name -> {"owner", "admin"}, of the
        registration records to change at OpenSRS with their email (session only; anyone else
        chooses on the verification page).
    :param attachments: files sent with the request; ValidationError keyed `attachments`, and
        nothing saved, if one breaks the rules.
    """
    if customer is None:
        anonymous_request_limits(client_key=client_key)
        email = (email or "").strip()
        if "@" not in email or len(email) > 254 or CONTROL_CHARACTERS.search(email):
            raise ValidationError({"email": [gettext(MODIFY_EMAIL_ON_RECORD)]})
    else:
        rate_limit_hit(scope="request_per_client", key=client_key)
        rate_limit_hit(scope="request_per_email", key=email_canonical(customer.email))
    cleaned = _modify_validate(changes, _customer_values(customer) if customer else None)
    note = _clean_note(note)
    if customer is not None:
        diff = {f: v for f, v in cleaned.items() if v != getattr(customer, f)}
        if not diff:
            raise ValidationError({"changes": [gettext(MODIFY_SAME_VALUES)]})
        ticket = ticket_create(
            kind=Ticket.Kind.MODIFY_INFO,
            subject=MODIFY_SUBJECT,
            actor=actor,
            customer=customer,
            contact_email=customer.email,
            body=note,
            channel=channel,
            status=S.OPEN,
            verified_by=Ticket.VerifiedBy.SESSION,
        )
        _modify_changes_record(ticket, customer, diff, actor)
        _modify_attachments_add(ticket, attachments, actor)
        if registration and "email" in diff:
            registration_choose_by_owner(ticket=ticket, customer=customer, choices=registration)
        _modify_after_verified(ticket, actor)
        return ticket
    # Anonymous: the same rows whether or not the address is on record; the worker looks it
    # up (modify_anonymous_continue).
    ticket = ticket_create(
        kind=Ticket.Kind.MODIFY_INFO,
        subject=MODIFY_SUBJECT,
        actor=actor,
        channel=channel,
        status=S.AWAITING_VERIFICATION,
    )
    anonymous_request_store(
        ticket=ticket, actor=actor, email=cast(str, email), changes=cleaned, note=note
    )
    _modify_attachments_add(ticket, attachments, actor)
    return ticket


def _modify_attachments_add(
    ticket: Ticket, attachments: Sequence[AttachmentUpload], actor: Actor
) -> None:
    """Keep the files on the request's own message, or on one saying files came with it.

    An anonymous request's note joins the ticket only once the worker found the record, so its
    files get a message of their own, made the same way whether or not the record exists.
    """
    if not attachments:
        return
    message = ticket.messages.filter(author=Message.Author.CUSTOMER).first()
    if message is None:
        message = Message.objects.create(
            ticket=ticket,
            author=Message.Author.CUSTOMER,
            body=ATTACHMENTS_ONLY_BODY,
            channel=ticket.channel,
        )
    attachments_add(message=message, uploads=attachments, actor=actor)


def modify_anonymous_continue(*, ticket: Ticket, request: AnonymousRequest) -> str:
    """The worker's half of an anonymous change request, on the locked ticket.

    Finds the customer with the email on record given; records the changes and the note on
    the ticket and mails the link to that address. Past the per-address limit no link is
    mailed: the ticket is joined to the last request that mailed one (and expires).
    """
    owner = customer_get_by_email(email=request.email)
    if owner is None:
        return AnonymousRequest.Outcome.NO_RECORD
    diff = {f: v for f, v in request.changes.items() if v != getattr(owner, f, v)}
    if not diff:
        return AnonymousRequest.Outcome.NO_CHANGE
    if not anonymous_request_attach(ticket=ticket, request=request, owner=owner):
        return AnonymousRequest.Outcome.COALESCED
    if request.note:
        Message.objects.create(
            ticket=ticket,
            author=Message.Author.CUSTOMER,
            body=request.note,
            channel=ticket.channel,
        )
    _modify_changes_record(ticket, owner, diff, request.actor)
    verification_start(ticket=ticket, send_to=owner.email)
    return AnonymousRequest.Outcome.LINK_SENT


def _modify_pending(ticket: Ticket) -> list[FieldChange]:
    return list(ticket.changes.filter(applied_at__isnull=True).order_by("id"))


def _modify_after_verified(ticket: Ticket, actor: Actor) -> None:
    """The policy once the requester is verified: low-risk fields at once, the rest to staff."""
    pending = _modify_pending(ticket)
    if settings.MODIFY_AUTO_APPLY_LOW_RISK and ticket.customer_id:
        customer = customer_lock(pk=ticket.customer_id)
        auto = (
            []
            if account_is_frozen(customer)
            else [
                change
                for change in pending
                if change.field in MODIFY_LOW_RISK
                and REDACTED not in change.new_value
                and getattr(customer, change.field) == change.old_value
            ]
        )
        if auto:
            _modify_apply(ticket, customer, auto, actor="system", how="low-risk policy")
            pending = [change for change in pending if change not in auto]
    for change in pending:
        if change.field == "email":
            verification_start(
                ticket=ticket, purpose=Verification.Purpose.NEW_EMAIL, send_to=change.new_value
            )
    if not pending:
        ticket_move(ticket, to=S.RESOLVED, actor="system", reason="all changes applied")


def modify_verified(*, ticket: Ticket, actor: Actor) -> None:
    """The owner confirmed the request by the link to the email on record: go on with it."""
    _modify_after_verified(ticket, actor)


def modify_new_email_confirmed(*, ticket: Ticket) -> None:
    """The new address answered its link: the change now waits only for a supervisor."""
    ticket.version += 1
    ticket.save(update_fields=["version", "updated_at"])


def _modify_new_email_is_confirmed(ticket: Ticket, address: str) -> bool:
    return Verification.objects.filter(
        ticket=ticket,
        purpose=Verification.Purpose.NEW_EMAIL,
        sent_to=address,
        used_at__isnull=False,
    ).exists()


def _mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _modify_apply(
    ticket: Ticket, customer: Customer, changes: list[FieldChange], *, actor: Actor, how: str
) -> None:
    """Write the changes to the locked customer, audit old and new values, tell the owner.

    Every path that changes a customer's record passes here, so the owner's verification is
    checked here too, whatever the caller already checked.
    """
    if ticket_needs_owner(ticket) or ticket.customer_id != customer.pk:
        raise TransitionNotAllowed(OWNER_NOT_VERIFIED, {"status": ticket.status})
    if account_is_frozen(customer):
        raise TransitionNotAllowed(ACCOUNT_FROZEN)
    old_email = customer.email
    rows = [
        {"field": c.field, "old": getattr(customer, c.field), "new": c.new_value} for c in changes
    ]
    for change in changes:
        setattr(customer, change.field, change.new_value)
    fields = [change.field for change in changes]
    email_changed = "email" in fields
    login = None
    if email_changed:
        other = customer_get_by_email(email=customer.email)
        if other is not None and other.pk != customer.pk:
            raise ApplicationError(MODIFY_EMAIL_TAKEN)
        login = modify_login_for(customer, old_email)
    customer.save(update_fields=[*fields, "updated_at"])
    if login is not None:
        login.save(update_fields=["username", "email"])
    FieldChange.objects.filter(pk__in=[change.pk for change in changes]).update(
        applied_at=timezone.now(), updated_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action="customer.details_changed",
        ticket=ticket,
        customer=customer,
        details={"how": how, "changes": rows, "login_updated": login is not None},
    )
    others = [row for row in rows if row["field"] != "email"]
    if others:
        notification_queue(
            ticket=ticket,
            template="details_changed",
            recipient=customer.email,
            context={
                "changes": [
                    {"label": MODIFY_FIELD_LABELS[row["field"]], "value": row["new"]}
                    for row in others
                ]
            },
        )
    if email_changed:
        notification_queue(
            ticket=ticket,
            template="email_changed_old",
            recipient=old_email,
            context={
                "new_email_masked": _mask_email(customer.email),
                "link": freeze_link_issue(ticket=ticket, old_email=old_email),
                "days": settings.FREEZE_LINK_TTL.days,
            },
        )
        notification_queue(
            ticket=ticket,
            template="email_changed_new",
            recipient=customer.email,
            context={},
        )
        _contact_follow_record(ticket, customer, old_email, actor)
        registration_changes_queue(ticket=ticket, actor=actor)


def _contact_follow_record(
    ticket: Ticket, customer: Customer, old_email: str, actor: Actor
) -> None:
    """Point the customer's open tickets that wrote to the old address at the new one."""
    ticket.contact_email = customer.email
    ticket.save(update_fields=["contact_email", "updated_at"])
    others = list(
        Ticket.objects.select_for_update()
        .filter(customer=customer, status__in=OPEN_STATUS_VALUES)
        .exclude(pk=ticket.pk)
        .order_by("pk")
    )
    old = email_canonical(old_email)
    for other in others:
        if email_canonical(other.contact_email) != old:
            continue
        other.contact_email = customer.email
        other.version += 1
        other.save(update_fields=["contact_email", "version", "updated_at"])
        audit_record(
            actor=actor,
            action="ticket.contact_changed",
            ticket=other,
            details={"reason": "email on record changed", "by_ticket": ticket.reference},
        )


def modify_login_for(customer: Customer, old_email: str) -> Any:
    """The customer's portal login, updated in memory when it signs in with the old address."""
    if customer.user_id is None:
        return None
    user = get_user_model().objects.select_for_update().get(pk=customer.user_id)
    old = email_canonical(old_email)
    if email_canonical(user.get_username()) != old and email_canonical(user.email) != old:
        return None
    if email_canonical(user.get_username()) == old:
        taken = (
            get_user_model()
            .objects.filter(username__iexact=customer.email)
            .exclude(pk=user.pk)
            .exists()
        )
        if taken:
            raise ApplicationError(MODIFY_EMAIL_TAKEN)
        user.username = customer.email
    user.email = customer.email
    return user


@dataclass(frozen=True)
class Approval:
    """Whether an actor may approve a ticket's change request now, and if not, why.

    `possible` says the ticket has a change waiting for staff at all (the page shows the
    button); `refusal` is the error approving would raise now (the button is disabled with its
    message). The service, the staff page and the API all read this one answer.
    """

    possible: bool
    needs_supervisor: bool
    refusal: ApplicationError | None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def modify_approval(ticket: Ticket, actor: Actor) -> Approval:
    """The approval rules for `ticket` and `actor`; reads only (the caller locks if it writes)."""
    pending = [change for change in ticket.changes.all() if change.applied_at is None]
    possible = (
        ticket.kind == Ticket.Kind.MODIFY_INFO
        and ticket.status in MODIFY_APPROVABLE_STATUSES
        and bool(pending)
        and ticket.customer_id is not None
    )
    needs_supervisor = bool(MODIFY_SENSITIVE & {change.field for change in pending})
    refusal: ApplicationError | None = None
    if isinstance(actor, str | Customer) or not is_staff_member(actor):
        refusal = ApprovalForbidden(MODIFY_STAFF_ONLY)
    elif pending and ticket_needs_owner(ticket):
        refusal = TransitionNotAllowed(OWNER_NOT_VERIFIED, {"status": ticket.status})
    elif not possible:
        refusal = TransitionNotAllowed(NOTHING_TO_APPROVE, {"status": ticket.status})
    elif ticket.customer is not None and account_is_frozen(ticket.customer):
        refusal = TransitionNotAllowed(ACCOUNT_FROZEN)
    elif needs_supervisor and not is_supervisor(actor):
        refusal = ApprovalForbidden(MODIFY_NEEDS_SUPERVISOR)
    elif any(
        change.field == "email" and not _modify_new_email_is_confirmed(ticket, change.new_value)
        for change in pending
    ):
        refusal = TransitionNotAllowed(MODIFY_NEW_EMAIL_UNCONFIRMED)
    return Approval(possible=possible, needs_supervisor=needs_supervisor, refusal=refusal)


def modify_awaiting_supervisor() -> QuerySet[Ticket]:
    """Change requests only a supervisor may approve, oldest first, with their pending diff.

    The database form of `modify_approval`'s `possible and needs_supervisor`, kept next to it so
    the rule lives in one module (a test holds the two to the same answer).
    """
    pending = FieldChange.objects.filter(applied_at__isnull=True)
    return (
        Ticket.objects.filter(
            Exists(pending.filter(ticket=OuterRef("pk"), field__in=sorted(MODIFY_SENSITIVE))),
            kind=Ticket.Kind.MODIFY_INFO,
            status__in=MODIFY_APPROVABLE_STATUSES,
            customer__isnull=False,
        )
        .select_related("customer", "assignee")
        .prefetch_related(Prefetch("changes", queryset=pending.order_by("id")))
        .order_by("created_at", "id")
    )


@transaction.atomic
def modify_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Apply a verified change request that waits for staff, atomically and at most once."""
    if isinstance(actor, str | Customer) or not is_staff_member(actor):
        raise ApprovalForbidden(MODIFY_STAFF_ONLY)
    locked = ticket_lock(pk=ticket.pk)
    ticket_version_check(locked, expected_version)
    approval = modify_approval(locked, actor)
    if approval.refusal is not None:
        raise approval.refusal
    pending = _modify_pending(locked)
    customer = customer_lock(pk=cast(int, locked.customer_id))
    conflicts = [c.field for c in pending if getattr(customer, c.field) != c.old_value]
    if conflicts:
        raise ModifyConflict(
            gettext(MODIFY_CONFLICT).format(fields=", ".join(conflicts)), {"fields": conflicts}
        )
    _modify_apply(locked, customer, pending, actor=actor, how="approved by staff")
    ticket_move(locked, to=S.RESOLVED, actor=actor, reason="changes applied")
    return locked


def ticket_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Approve what a ticket asks for; only change requests have anything to approve."""
    if ticket.kind == Ticket.Kind.MODIFY_INFO:
        return modify_approve(ticket=ticket, actor=actor, expected_version=expected_version)
    raise TransitionNotAllowed(NOTHING_TO_APPROVE, {"kind": ticket.kind})
