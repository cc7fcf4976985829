from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from domains.validators import domain_compare_form, domain_display
from helpdesk.models import BaseModel


class Domain(BaseModel):
    """Cache of a domain's registration record; OpenSRS is the source of truth."""

    class EmailStatus(models.TextChoices):
        UNKNOWN = "unknown", _("Unknown")
        VALID = "valid", _("Valid")
        BOUNCING = "bouncing", _("Bouncing")

    name = models.CharField(max_length=253, unique=True, help_text="Lower-case IDNA (xn--) form.")
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="domains", null=True, blank=True
    )
    opensrs_username = models.CharField(max_length=64, blank=True)
    registrant_email = models.EmailField(blank=True)
    registrant_email_status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.UNKNOWN
    )
    # The admin contact's address, and OpenSRS's change-of-registrant status (GET_DOMAINS_CONTACTS:
    # active, pending_current_registrant, pending_new_registrant), read with the owner's.
    admin_email = models.EmailField(blank=True)
    registrant_change = models.CharField(max_length=32, blank=True)
    # When the registration contacts were last read from OpenSRS.
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name=Lower("name")), name="domain_name_lower"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def unicode_name(self) -> str:
        return domain_display(self.name)

    @property
    def registrant_email_at_domain(self) -> bool:
        """The registration email is at this domain or under it, so it works only while it does."""
        _, at, host = self.registrant_email.rpartition("@")
        host = domain_compare_form(host).rstrip(".")
        return bool(at) and (host == self.name or host.endswith(f".{self.name}"))


class RegistrationChange(BaseModel):
    """One domain of an email change request whose registration record named the old address.

    The owner chooses, in the verified request, whether the owner and/or admin email at OpenSRS
    change too; after approval the worker makes the change and records OpenSRS's answer here.

    A freeze ("this wasn't me") offers a put-back per domain whose record was (or may have been)
    changed to the reported address: `old_email` is that address, `new_email` the one the record
    named before; it goes to OpenSRS, through the same worker, once a supervisor asks for it.
    """

    class Purpose(models.TextChoices):
        CHANGE = "change", _("Change asked by the customer")
        PUT_BACK = "put_back", _("Put back after a freeze")

    class Status(models.TextChoices):
        OFFERED = "offered", _("Offered")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending to OpenSRS")
        DONE = "done", _("Changed at OpenSRS")
        REFUSED = "refused", _("Refused by OpenSRS")
        FAILED = "failed", _("Not sent")
        UNKNOWN = "unknown", _("Outcome unknown")
        SKIPPED = "skipped", _("Not changed")

    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="registration_changes"
    )
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.CHANGE)
    old_email = models.EmailField()
    new_email = models.EmailField()
    # Which contacts named the old address when the request was made.
    owner_matches = models.BooleanField(default=False)
    admin_matches = models.BooleanField(default=False)
    # The owner's choice (for a put-back: the contacts the reported address was sent to).
    update_owner = models.BooleanField(default=False)
    update_admin = models.BooleanField(default=False)
    # When the owner chose (for a put-back: when a supervisor asked for it).
    chosen_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFERED)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_text = models.CharField(max_length=500, blank=True)
    # OpenSRS's change-of-registrant status after an owner change (active, pending_...).
    registrant_change = models.CharField(max_length=32, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ticket", "domain__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "domain", "purpose"],
                name="registrationchange_ticket_domain_purpose_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.domain_id}"

    @property
    def chosen(self) -> bool:
        return self.update_owner or self.update_admin

    @property
    def is_put_back(self) -> bool:
        return self.purpose == self.Purpose.PUT_BACK


class RegistrationWarning(BaseModel):
    """The notices sent to a customer about one dead or out-of-date registration address."""

    class Reason(models.TextChoices):
        BOUNCING = "bouncing", _("The registration email bounces")
        DIFFERS = "differs", _("The registration email is not the email on record")

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="+")
    address = models.EmailField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    notices = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain", "address", "reason"], name="registrationwarning_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.domain_id}:{self.reason}"
