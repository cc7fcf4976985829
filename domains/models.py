from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from domains.querysets import DomainQuerySet
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
    synced_at = models.DateTimeField(null=True, blank=True)

    objects = DomainQuerySet.as_manager()

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
        try:
            return self.name.encode("ascii").decode("idna")
        except UnicodeError:
            return self.name
