"""The portal's home page, and what its views share."""

from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Customer
from accounts.selectors import customer_for_user
from helpdesk.shortcuts import found_or_404
from tickets.models import Ticket

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise
from tickets.services.attachments import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_MAX_MEGABYTES,
    ATTACHMENT_TOO_LARGE,
    ATTACHMENTS_PER_MESSAGE,
    ATTACHMENTS_TOO_MANY,
    AttachmentUpload,
    attachments_validate,
)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


def customer_or_404(request: HttpRequest) -> Customer:
    # Staff work tickets in the staff queue; /my/ is only for customers.
    return found_or_404(customer_for_user(request.user))


# --- POST-redirect-GET: a form's result page is a GET, so a reload never sends it again ---

DONE_TEMPLATES = {
    "request-general": "portal/request_general_done.html",
    "request-password": "portal/request_password_done.html",
    "request-modify": "portal/modify_done.html",
    "request-opt-out": "portal/opt_out_done.html",
    "verify": "portal/verify_done.html",
    "not-me": "portal/not_me_done.html",
    "unsubscribe": "portal/unsubscribe_done.html",
    "registration-fix": "portal/registration_fix_done.html",
    "track": "portal/track_sent.html",
}


def ticket_done_summary(ticket: Ticket | None) -> dict[str, Any] | None:
    """What a result page shows of a ticket, kept in the session between the POST and the GET."""
    if ticket is None:
        return None
    return {
        "reference": ticket.reference,
        "status": ticket.status,
        "get_status_display": str(ticket.get_status_display()),
        "contact_email": bool(ticket.contact_email),
    }


def done_redirect(request: HttpRequest, page: str, context: dict[str, Any]) -> HttpResponse:
    """Keep the result page's context in the session and answer 303 See Other to that page."""
    request.session[f"portal_done:{page}"] = context
    response = HttpResponseRedirect(reverse(f"portal:{page}-done"))
    response.status_code = 303
    return response


@never_cache
@require_GET
def done(request: HttpRequest, page: str) -> HttpResponse:
    """A form's result page; without a result in this session, the help desk's home."""
    context = request.session.get(f"portal_done:{page}")
    if page not in DONE_TEMPLATES or context is None:
        return HttpResponseRedirect(reverse("portal:home"))
    return render(request, DONE_TEMPLATES[page], context)


# --- files attached to a form (portal requests and replies, staff replies) ---

# What the file picker offers; the bytes are judged on the server whatever it lets through.
ATTACHMENT_ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,.txt,.csv"


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


def attachment_limits_help(text: "StrOrPromise") -> "StrOrPromise":
    """A file field's help text with the attachment limits filled in, when it is shown.

    :param text: a lazy msgid naming {count} and {megabytes}, so it reads in the reader's language.
    """
    return format_lazy(text, count=ATTACHMENTS_PER_MESSAGE, megabytes=ATTACHMENT_MAX_MEGABYTES)


class AttachmentsField(forms.Field):
    """Up to ATTACHMENTS_PER_MESSAGE files, judged by tickets.services.attachments' rules.

    Cleans to a list of AttachmentUpload; a file too large is refused before it is read.
    """

    widget = MultipleFileInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Attach files (optional)"))
        kwargs.setdefault(
            "help_text",
            attachment_limits_help(
                _(
                    "Up to {count} files of {megabytes} MB each: images (PNG, JPEG, GIF, WebP), "
                    "PDF or plain text."
                )
            ),
        )
        super().__init__(**kwargs)
        self.widget.attrs.update({"accept": ATTACHMENT_ACCEPT})

    def clean(self, value: Any) -> list[AttachmentUpload]:
        files: list[UploadedFile] = [f for f in (value or []) if f]
        if len(files) > ATTACHMENTS_PER_MESSAGE:
            raise ValidationError(
                gettext(ATTACHMENTS_TOO_MANY).format(count=ATTACHMENTS_PER_MESSAGE)
            )
        too_large = [
            gettext(ATTACHMENT_TOO_LARGE).format(name=f.name, megabytes=ATTACHMENT_MAX_MEGABYTES)
            for f in files
            if (f.size or 0) > ATTACHMENT_MAX_BYTES
        ]
        if too_large:
            raise ValidationError(too_large)
        uploads = [AttachmentUpload(filename=f.name or "", content=f.read()) for f in files]
        try:
            return attachments_validate(uploads=uploads)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("attachments", exc.messages)) from None


def attachment_errors_add(form: forms.Form, exc: ValidationError) -> None:
    """A service's refusal of the files (or of another field), shown on that field of the form."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"attachments": exc.messages}
    for key, messages in errors.items():
        form.add_error(key if key in form.fields else None, messages)
