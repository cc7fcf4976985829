import secrets
from datetime import datetime

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

from helpdesk.models import BaseModel
from helpdesk.validators import validate_address, without_control_characters

# What staff pages show of a customer: no control characters, no text that reads backwards.
_ONE_LINE = [without_control_characters]


def new_customer_number() -> str:
    """A public customer number that says nothing about how many customers there are."""
    return f"C{secrets.randbelow(90_000_000) + 10_000_000}"


class Customer(BaseModel):
    """The personal information held on a customer: what `modify_info` tickets change."""

    class AccountStatus(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        CLOSED = "closed", _("Closed")

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        MALAY = "ms", "Bahasa Melayu"

    number = models.CharField(
        max_length=12, unique=True, default=new_customer_number, editable=False
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer",
    )
    full_name = models.CharField(_("full name"), max_length=150, validators=_ONE_LINE)
    # The one rule for addresses (helpdesk.validators.address_normalised): a system check holds
    # every address field to it (helpdesk.checks.address_fields_use_the_rule).
    email = models.EmailField(_("email"), max_length=254, validators=[validate_address])
    phone = models.CharField(_("phone"), max_length=32, blank=True, validators=_ONE_LINE)
    address_line1 = models.CharField(
        _("address line 1"), max_length=200, blank=True, validators=_ONE_LINE
    )
    address_line2 = models.CharField(
        _("address line 2"), max_length=200, blank=True, validators=_ONE_LINE
    )
    city = models.CharField(_("city"), max_length=100, blank=True, validators=_ONE_LINE)
    state = models.CharField(_("state"), max_length=100, blank=True, validators=_ONE_LINE)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True, validators=_ONE_LINE)
    country = models.CharField(_("country"), max_length=2, blank=True, validators=_ONE_LINE)
    account_status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    # Raised by every freeze (tickets.services.freeze): a lift names the freeze it was shown,
    # so one opened before a newer freeze lifts nothing.
    freeze_version = models.PositiveIntegerField(default=0)
    is_reseller = models.BooleanField(default=False)
    product_mailings = models.BooleanField(_("product mailings"), default=True)
    reseller_newsletters = models.BooleanField(_("reseller newsletters"), default=False)
    # Raised on every re-subscription: unsubscribe links carry it, so older links stop working.
    mailing_version = models.PositiveIntegerField(default=0)
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    # A card is kept only as what the processor lets us show; the number itself never is.
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(
        max_length=4, blank=True, validators=[RegexValidator(r"^\d{4}$", "Four digits.")]
    )
    card_token = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["full_name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(card_last4="") | models.Q(card_last4__regex=r"^[0-9]{4}$"),
                name="customer_card_last4_digits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.number})"

    @property
    def address_lines(self) -> list[str]:
        parts = [self.address_line1, self.address_line2, self.city, self.state, self.postcode]
        return [p for p in parts if p] + ([self.country] if self.country else [])


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox): only its SHA-512 digest is stored; it expires.

    The owner names each token (what it is for) and sees when it was last used, so a stale or
    unknown one can be revoked.
    """

    # A plain key for URLs and lists: knox's primary key is the digest, which stays private.
    # Annotated by hand: knox has no type hints, so the stubs cannot see this is a model.
    id: "models.BigAutoField[int, int]" = models.BigAutoField(primary_key=True)
    digest: "models.CharField[str, str]" = models.CharField(
        max_length=CONSTANTS.DIGEST_LENGTH, unique=True
    )
    name: "models.CharField[str, str]" = models.CharField(
        _("name"), max_length=100, validators=_ONE_LINE
    )
    last_used_at: "models.DateTimeField[datetime | None, datetime | None]" = models.DateTimeField(
        null=True, blank=True
    )

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"


class LoginState(BaseModel):
    """What a login's device cookies are issued under besides its password and its flags.

    `reactivations` counts the times the login was let sign in again after it could not
    (deactivated, its customer account frozen or closed). The state coming back brings the same
    flags back: this count is what makes a device cookie of before the lock-out no cookie of
    after it (accounts.login_devices). A login never locked out has no row.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="login_state",
    )
    reactivations = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.reactivations}"
