"""The tickets app's models: one module, as Django and STYLE.md §2 expect, hence its length."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.models import BaseModel
from helpdesk.validators import (
    validate_address,
    without_control_characters,
    without_hidden_characters,
)
from tickets.querysets import ActionLogQuerySet, NotificationQuerySet

# Crockford's base32 without I, L, O, U: nothing to misread when a customer reads it out.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    """A random, non-sequential public ticket reference such as HD-7K3M9Q2X."""
    return "HD-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


# The statuses of OPEN_STATUSES as plain values, for the partial indexes below.
OPEN_STATUS_VALUES = ("awaiting_customer", "awaiting_verification", "new", "open")
PRIORITY_RANK = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
# Tickets without a due time sort after every real one.
NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)


def due_sort_key() -> Coalesce:
    """The staff queue's due-time sort key; the same expression as the indexes on it."""
    return Coalesce("due_at", models.Value(NO_DUE))


def priority_sort_key() -> models.Case:
    """The staff queue's priority sort key (low 1 .. urgent 4), as indexed."""
    return models.Case(
        *[models.When(priority=p, then=models.Value(rank)) for p, rank in PRIORITY_RANK.items()],
        default=models.Value(0),
    )


class Ticket(BaseModel):
    class Kind(models.TextChoices):
        MODIFY_INFO = "modify_info", _("Change my details")
        RESEND_PASSWORD = "resend_password", _("Resend my domain password")
        OPT_OUT = "opt_out", _("Stop mailings")
        GENERAL = "general", _("General help")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        AWAITING_VERIFICATION = "awaiting_verification", _("Awaiting verification")
        OPEN = "open", _("Open")
        AWAITING_CUSTOMER = "awaiting_customer", _("Awaiting customer")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        REJECTED = "rejected", _("Rejected")
        REFERRED = "referred", _("Referred to OpenSRS")
        EXPIRED = "expired", _("Expired")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    class VerifiedBy(models.TextChoices):
        SESSION = "session", _("The owner's own login")
        EMAIL_LINK = "email_link", _("A link sent to the email on record")

    class Channel(models.TextChoices):
        PORTAL = "portal", _("Portal")
        EMAIL = "email", _("Email")
        API = "api", _("API")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System")

    reference = models.CharField(max_length=11, unique=True, default=new_reference, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.NEW)
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    domain = models.ForeignKey(
        "domains.Domain", on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    # What the requester typed: used for replies, never for secrets.
    # Django's email validator takes a bidi override in the domain ("a@b.com\u202e...").
    contact_email = models.EmailField(blank=True, validators=[validate_address])
    # The domain name as asked for, kept even when it is not ours (shown to staff only).
    requested_domain = models.CharField(max_length=253, blank=True)
    subject = models.CharField(max_length=200, validators=[without_control_characters])
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PORTAL)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    due_at = models.DateTimeField(null=True, blank=True)
    # The SLA clock stops while the ticket waits on someone else (SLA_PAUSED_STATUSES): since
    # when, and how long it stood still in all; resuming moves due_at on by the pause.
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_paused_total = models.DurationField(default=timedelta)
    # Linked to its customer only because its contact address is that customer's email on
    # record (sent without logging in): nobody confirmed who sent it.
    customer_by_contact = models.BooleanField(default=False, db_default=False)
    # A duplicate merged into another ticket points to the survivor, which holds its messages.
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_from"
    )
    # Whether any ticket was merged into this one (set by services.merge alone): the staff page
    # reads the merged tickets only then, where an EXISTS on every page's ticket row cost 0.3 to
    # 0.4 ms.
    merged_from_any = models.BooleanField(default=False, db_default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=5, default="en")
    # Bumped on every change: a form posted with an older version is refused (stale edit).
    version = models.PositiveIntegerField(default=1)
    # The same two for what the requester is shown (their ETag, version and "Last update"):
    # they stand still for what only staff see (an internal note, a message held back from
    # them), so a customer polling their ticket does not learn that one was written.
    requester_version = models.PositiveIntegerField(default=1)
    requester_updated_at = models.DateTimeField(default=timezone.now)
    # The recorded fact that the owner of the email on record stands behind this request: set
    # once, by the owner's own session or by the link they confirmed. No change is applied to a
    # customer's record without it, whatever statuses the ticket went through.
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.CharField(max_length=10, choices=VerifiedBy.choices, blank=True)
    verification = models.ForeignKey(
        "tickets.Verification",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The first reply a staff member sent the requester (internal notes do not count): set once.
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at", "-id"], name="ticket_status_created"),
            models.Index(fields=["kind", "-created_at", "-id"], name="ticket_kind_created"),
            models.Index(fields=["assignee", "-created_at", "-id"], name="ticket_assignee_created"),
            models.Index(fields=["due_at", "id"], name="ticket_due"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_created"),
            # The staff queue reads a page by keyset, walking one of these in its sort order
            # (selectors.QUEUE_SORTS; the created_at index serves the two created sorts). The
            # open-only one serves the default views.
            models.Index(
                due_sort_key(),
                "id",
                name="ticket_open_due_key",
                condition=models.Q(status__in=OPEN_STATUS_VALUES),
            ),
            models.Index(due_sort_key(), "id", name="ticket_due_key"),
            models.Index(priority_sort_key(), "id", name="ticket_priority_key"),
            models.Index(fields=["updated_at", "id"], name="ticket_updated"),
            # The view counts: an index-only scan over the open tickets, so it must hold
            # every column the counts read (a column left out makes it a scan of the table).
            models.Index(
                fields=["status", "assignee", "due_at", "sla_paused_at", "id"],
                name="ticket_open_counts",
                condition=models.Q(status__in=OPEN_STATUS_VALUES),
            ),
            # Search: `contact_email__iexact`. Subject, requested domain (and Domain.name) have
            # trigram indexes on PostgreSQL only (migration 0003), outside the model state.
            models.Index(Upper("contact_email"), name="ticket_contact_email_ci"),
        ]
        permissions = [
            ("work_ticket", "Can work tickets in the staff queue"),
            ("approve_sensitive_change", "Can approve name and email changes"),
            ("view_audit_log", "Can read the audit log"),
            ("manage_disclosures", "Can read and record disclosures"),
            ("export_customer", "Can export everything held on a customer"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def opener_unproven(self) -> bool:
        """Sent from its customer's address by nobody proven to be them (yet).

        The rule of tickets.selectors.messages.ticket_opener_unproven, on a loaded row.
        """
        return self.customer_by_contact and self.verified_at is None


OPEN_STATUSES = frozenset(Ticket.Status(value) for value in OPEN_STATUS_VALUES)
# Kinds whose ticket, sent without logging in, is linked to the customer whose email on record
# is its contact address. Change and opt-out requests are looked up by the worker, which links
# them itself (services.anonymous); a password resend concerns the domain's registrant, and the
# typed address only gets the acknowledgement, so the requester's record is not its customer.
LINKED_BY_CONTACT_KINDS = frozenset({Ticket.Kind.GENERAL})
# The parts of a ticket only one kind has, so that pages read them for that kind alone: field
# changes and the registration changes they offer (services.modify, services.registration), and
# OpenSRS calls (services.password_resend). A test holds each writer to its kind.
CHANGE_REQUEST_KINDS = frozenset({Ticket.Kind.MODIFY_INFO})
OPENSRS_CALL_KINDS = frozenset({Ticket.Kind.RESEND_PASSWORD})
# While a ticket waits on the customer or on the owner's verification, its SLA clock stands still.
SLA_PAUSED_STATUSES = frozenset(
    {Ticket.Status.AWAITING_CUSTOMER, Ticket.Status.AWAITING_VERIFICATION}
)


class FieldChange(BaseModel):
    """One field of a `modify_info` request: the value on record when asked, and the new one."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    field = models.CharField(max_length=32)
    old_value = models.CharField(max_length=254, blank=True)
    new_value = models.CharField(max_length=254, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ticket", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "field"], name="fieldchange_ticket_field_unique"
            ),
        ]
        indexes = [
            # The approvals waiting for a supervisor (services.modify_awaiting_supervisor, counted
            # on the dashboard): the few pending name and email changes, not every change.
            models.Index(
                fields=["ticket"],
                name="fieldchange_pending_sensitive",
                condition=models.Q(applied_at__isnull=True, field__in=["email", "full_name"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.field}"


class Message(BaseModel):
    class Author(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System")

    # Indexed with its time by message_ticket_created (Meta), which serves its lookups too.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    author = models.CharField(max_length=10, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField()
    internal = models.BooleanField(default=False)
    channel = models.CharField(max_length=10, choices=Ticket.Channel.choices)
    # Message-ID of an inbound email, so a redelivered webhook stores it once.
    email_message_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # An inbound email's sender check (services.inbound_auth): whether our mail server
    # authenticated its From address, and from which header. Null for every other message.
    sender_authentication = models.JSONField(null=True, blank=True)
    # Written as the requester by someone not shown to be the ticket's customer (the web form
    # or the change form without a login, with their address typed in): shown to staff only
    # until the customer confirms the request or its verification link (selectors.messages).
    # Kept on the message, so a merge moves it with the words and leaves each ticket as it was.
    unproven = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["ticket", "created_at", "id"]
        indexes = [
            # A ticket's latest messages (its staff page) read from the end of the index: as
            # many rows as the page shows, not the whole conversation sorted.
            models.Index(fields=["ticket", "created_at", "id"], name="message_ticket_created"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.pk}"


class Attachment(BaseModel):
    """A file on a message (inbound mail, the portal, a staff reply), kept in the database.

    Downloadable and mailed only once the worker's scan found it clean.
    """

    class ScanStatus(models.TextChoices):
        PENDING = "pending", _("Being checked")
        CLEAN = "clean", _("Checked")
        INFECTED = "infected", _("Blocked: malware found")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    content = models.BinaryField()
    scan_status = models.CharField(
        max_length=8, choices=ScanStatus.choices, default=ScanStatus.PENDING
    )
    scanned_at = models.DateTimeField(null=True, blank=True)
    # What the scanner said of an infected file (e.g. "Eicar-Test-Signature"), and which one.
    scan_result = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["message", "id"]
        indexes = [
            # The sweep's "still to scan", oldest first.
            models.Index(
                fields=["created_at"],
                condition=models.Q(scan_status="pending"),
                name="attachment_scan_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.filename


class Verification(BaseModel):
    """A single-use link sent to an address on record; only the token's hash is kept."""

    class Purpose(models.TextChoices):
        REQUESTER = "requester", _("Requester owns the email on record")
        NEW_EMAIL = "new_email", _("New email address confirms")
        NOT_ME = "not_me", _("Old email address reports a change it did not make")
        # Not single use: the link to a ticket's status page, used as often as the holder likes.
        STATUS = "status", _("Requester follows the ticket")
        # Not single use either: the resolution email's "Did this solve it?" links.
        SATISFACTION = "satisfaction", _("Requester rates the resolution")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="verifications")
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.REQUESTER)
    sent_to = models.EmailField()
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A satisfaction link's resolution: the ticket's resolved_at when it was mailed. It rates
    # that resolution only, never one after the ticket was reopened and resolved again.
    resolution_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.purpose}"


class Notification(BaseModel):
    """The outbox: one row per email, written in the transaction of the action that causes it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexed with its time by notification_ticket_created (Meta), which serves its lookups too.
    ticket = models.ForeignKey(
        Ticket, models.CASCADE, null=True, blank=True, related_name="notifications", db_index=False
    )
    template = models.CharField(max_length=64)
    recipient = models.EmailField()
    context = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=5, default="en")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    esp_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # A ticket's latest emails (its staff page), read from the end of the index.
            models.Index(fields=["ticket", "created_at", "id"], name="notification_ticket_created"),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="notification_due",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
            # The dashboard's failed and bounced mail: few rows, however long the outbox.
            models.Index(
                fields=["updated_at", "id"],
                name="notification_problems",
                condition=models.Q(status__in=["failed", "bounced"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.recipient} ({self.status})"


class PasswordResend(BaseModel):
    """Where the OpenSRS work of one password-resend ticket stands (the log only records it)."""

    class Stage(models.TextChoices):
        PENDING = "pending", _("SEND_PASSWORD not asked yet")
        STARTED = "started", _("SEND_PASSWORD asked, no answer recorded")
        SENT = "sent", _("OpenSRS sent the reset")
        NOT_SENT = "not_sent", _("OpenSRS answered with an error: nothing sent")
        UNKNOWN = "unknown", _("No answer from OpenSRS: it may have sent the reset")

    class Outcome(models.TextChoices):
        NONE = "", _("Not finished")
        SENT = "sent", _("Reset sent to the registration address")
        UNKNOWN_DOMAIN = "unknown_domain", _("Domain not in our account")
        REFERRED = "referred", _("Registration address unusable: direct request to OpenSRS")
        COALESCED = "coalesced", _("Joined to the last reset for the domain")
        TO_STAFF = "to_staff", _("Handed to staff")

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="resend")
    # The normalised domain name asked for (also on the ticket), indexed for the domain limits.
    domain_name = models.CharField(max_length=253)
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.PENDING)
    # OpenSRS failures that sent nothing (each one is retried until PASSWORD_RESEND_MAX_TRIES).
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the worker should next try; the sweep queues rows whose time passed long ago.
    next_try_at = models.DateTimeField()
    # When SEND_PASSWORD was asked for: what the per-domain limits count.
    asked_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    # A request past the per-domain limits is answered by the last reset instead of a new one.
    coalesced_with = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["domain_name", "asked_at"], name="resend_domain_asked"),
            models.Index(
                fields=["next_try_at"],
                name="resend_due",
                condition=models.Q(outcome=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.stage}"


class AnonymousRequest(BaseModel):
    """What a request made without a login asked for, until the worker looks the record up.

    The request itself does the same work whoever it names (this row, the ticket, one task);
    the worker finds the customer, records the changes or lists on the ticket and mails the
    link, or finds nobody (or a closed account) and keeps nothing of what was typed.
    """

    class Outcome(models.TextChoices):
        NONE = "", _("Not looked up yet")
        LINK_SENT = "link_sent", _("A link went to the email on record")
        NO_RECORD = "no_record", _("No customer with that email")
        NO_CHANGE = "no_change", _("Nothing differs from the record")
        COALESCED = "coalesced", _("Joined to the last request for that address")
        ACCOUNT_CLOSED = "closed", _("The account with that email is closed")

    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, related_name="anonymous_request"
    )
    actor = models.CharField(max_length=150)
    # The address typed as the email on record (cleared once it matched nobody).
    email = models.CharField(max_length=254, blank=True)
    # modify_info: the validated new values by field; opt_out: the lists asked for.
    changes = models.JSONField(default=dict, blank=True)
    lists = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    coalesced_with = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="anonymous_request_due",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.outcome or 'pending'}"


class ActionLogImmutableError(Exception):
    """The audit log is append-only."""


class ActionLog(models.Model):
    """Append-only, hash-chained record of every action; also the ticket's history."""

    sequence = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    # Indexed with its sequence by actionlog_ticket_sequence (Meta), which serves its lookups too.
    ticket = models.ForeignKey(
        Ticket, models.PROTECT, null=True, blank=True, related_name="events", db_index=False
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = ActionLogQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]
        indexes = [
            # A ticket's latest audit rows (its staff page), read from the end of the index.
            models.Index(fields=["ticket", "sequence"], name="actionlog_ticket_sequence"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ActionLogImmutableError("audit log rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ActionLogImmutableError("audit log rows cannot be deleted")


class AuditChainHead(models.Model):
    """The single row every audit write locks first, which serialises the chain across writers."""

    sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    # The hash before last_hash: lets one UPDATE ... RETURNING hand back both ends of a link.
    prev_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"audit head #{self.sequence}"


class Disclosure(BaseModel):
    """A disclosure of a customer's information to a third party (legal process, rights)."""

    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="disclosures"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Typed by staff, read by other supervisors and in the customer's export: nothing in them
    # may hide or reverse text.
    disclosed_to = models.CharField(max_length=200, validators=[without_control_characters])
    information = models.TextField(validators=[without_hidden_characters])
    legal_basis = models.CharField(max_length=200, validators=[without_control_characters])
    reference = models.CharField(
        max_length=100, blank=True, validators=[without_control_characters]
    )
    disclosed_at = models.DateTimeField()

    class Meta:
        ordering = ["-disclosed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.customer_id} to {self.disclosed_to}"


class Satisfaction(BaseModel):
    """The requester's answer to "Did this solve it?"; one per ticket, a later one replaces it."""

    class Answer(models.TextChoices):
        YES = "yes", _("Yes, it is solved")
        NO = "no", _("No, it is not solved")

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="satisfaction")
    answer = models.CharField(max_length=3, choices=Answer.choices)
    comment = models.TextField(blank=True, max_length=2000, validators=[without_hidden_characters])
    # Who resolved it, kept as at the first answer so a later reassignment moves no figures.
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    answered_at = models.DateTimeField()

    class Meta:
        ordering = ["-answered_at", "-id"]
        indexes = [models.Index(fields=["answered_at"], name="satisfaction_answered")]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.answer}"


class SavedView(BaseModel):
    """A staff member's named queue filter and sort: the queue's querystring, nothing more."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=80, validators=[without_control_characters])
    # Rebuilt from the cleaned queue filters (allow-listed keys, no page cursor).
    query = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["owner", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="savedview_owner_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}:{self.name}"


class TicketStatCounts(BaseModel):
    """What the dashboard counts of one kind for one staff member over a day or a month."""

    kind = models.CharField(max_length=20, choices=Ticket.Kind.choices)
    # The staff member's user id, 0 for nobody: a plain number, so that (day, kind, agent) is a
    # unique key without NULLs for the upsert's ON CONFLICT (and a deleted login keeps its past).
    agent_key = models.PositiveIntegerField(default=0)
    created = models.IntegerField(default=0)
    first_responses = models.IntegerField(default=0)
    # Seconds from creation to the first response, summed over `first_responses`.
    first_response_seconds = models.BigIntegerField(default=0)
    resolved = models.IntegerField(default=0)
    # Seconds from creation to resolution, summed over `resolved`.
    resolution_seconds = models.BigIntegerField(default=0)
    # Of the resolved: within the due time (which the SLA pauses moved on) or after it.
    sla_met = models.IntegerField(default=0)
    sla_breached = models.IntegerField(default=0)
    closed = models.IntegerField(default=0)

    class Meta:
        abstract = True


class TicketDailyStat(TicketStatCounts):
    """What happened to tickets on one day (local time), of one kind, for one staff member.

    Kept by the services as each event happens (`tickets.services.stats`) and recomputed from the
    tickets by `ticket_stats_rebuild` (the last 3 days every night, by beat); the dashboard reads
    only these rows and the monthly ones. A created ticket
    counts for nobody (agent 0); a first response for whoever sent it; a resolution or a close
    for the ticket's assignee.
    """

    day = models.DateField()

    class Meta:
        ordering = ["day", "kind", "agent_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "agent_key"], name="ticket_daily_stat_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.agent_key}"


class TicketMonthlyStat(TicketStatCounts):
    """The daily rows of one month (`month`, its first day), kind and staff member, summed.

    Kept with the daily rows by the same statements (`tickets.services.stats`), so each equals
    its month's daily rows summed; the dashboard reads these for the whole months of a long
    range (a year: about 530 rows instead of 16,000).
    """

    month = models.DateField()

    class Meta:
        ordering = ["month", "kind", "agent_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "kind", "agent_key"], name="ticket_monthly_stat_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind} {self.agent_key}"


# TicketStatCounts' counters: what the services add to and the dashboard sums.
STAT_FIELDS = (
    "created",
    "first_responses",
    "first_response_seconds",
    "resolved",
    "resolution_seconds",
    "sla_met",
    "sla_breached",
    "closed",
)
