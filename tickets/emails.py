"""Render outbox rows into email messages: one builder, templates under templates/emails/."""

from email.utils import parseaddr
from urllib.parse import urlsplit

from anymail.message import AnymailMessage
from django.conf import settings
from django.template import Context
from django.template.loader import get_template
from django.utils import translation

from tickets.attachments import attachment_handed_out_name, attachment_served_type
from tickets.models import Notification
from tickets.selectors.tickets import attachments_for_email


def mail_domain() -> str:
    """The domain our Message-IDs use: the host of SITE_URL."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def loop_header_value() -> str:
    """What our outgoing mail carries as X-Loop, so our own mail coming back is recognised."""
    return parseaddr(settings.SUPPORT_EMAIL)[1].lower()


def ticket_thread_id(reference: str) -> str:
    """A stable Message-ID per ticket, so every email about it threads together."""
    return f"<ticket-{reference}@{mail_domain()}>"


def notification_message_id(notification: Notification) -> str:
    return f"<{notification.uuid}@{mail_domain()}>"


def _render(name: str, context: dict, *, autoescape: bool) -> str:
    # Plain-text parts and subjects must not be HTML-escaped; the HTML part always is.
    return get_template(name).template.render(Context(context, autoescape=autoescape))  # type: ignore[attr-defined]  # django-stubs' template protocol omits the Django backend's .template


def render_email(template: str, context: dict, language: str = "en") -> tuple[str, str, str]:
    """Render subject, text and HTML of `emails/<app>/<name>`; `template` is `app/name`."""
    full_context = {
        "COMPANY_NAME": settings.COMPANY_NAME,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "BILLING_EMAIL": settings.BILLING_EMAIL,
        "SITE_URL": settings.SITE_URL,
        "STATUS_LINK_DAYS": settings.STATUS_LINK_TTL.days,
        **context,
    }
    with translation.override(language):
        full_context["LANGUAGE_CODE"] = language
        subject = _render(f"emails/{template}.subject.txt", full_context, autoescape=False)
        text = _render(f"emails/{template}.txt", full_context, autoescape=False)
        html = _render(f"emails/{template}.html", full_context, autoescape=True)
    subject = " ".join(subject.split())
    reference = context.get("reference")
    if reference and reference not in subject:
        subject = f"[{reference}] {subject}"
    return subject, text, html


# Mail a person wrote (an agent's reply): it is not marked Auto-Submitted, so the customer's
# mail client and autoresponders treat it as a person's.
PERSONAL_TEMPLATES = frozenset({"ticket_reply"})


def build_message(notification: Notification) -> AnymailMessage:
    """The email for one outbox row, with threading and auto-reply suppression headers."""
    template = (
        notification.template
        if "/" in notification.template
        else f"tickets/{notification.template}"
    )
    context = dict(notification.context)
    attached = []
    if context.get("attachments"):
        clean, _pending = attachments_for_email(attachment_ids=context["attachments"])
        # Only what fits the ESP's message size goes with the email; the rest stays on the page.
        room = settings.EMAIL_ATTACHMENTS_MAX_BYTES
        for attachment in clean:
            if attachment.size <= room:
                attached.append(attachment)
                room -= attachment.size
        context["attachments_left_out"] = [a.filename for a in clean if a not in attached]
    subject, text, html = render_email(template, context, notification.language)
    headers = {
        "Message-ID": notification_message_id(notification),
        "X-Auto-Response-Suppress": "All",
        "X-Loop": loop_header_value(),
    }
    if notification.template not in PERSONAL_TEMPLATES:
        headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: machine mail, not a person's
    reference = notification.context.get("reference")
    if reference:
        thread = ticket_thread_id(reference)
        headers["In-Reply-To"] = thread
        headers["References"] = thread
    headers.update(notification.headers or {})
    message = AnymailMessage(
        subject=subject,
        body=text,
        to=[notification.recipient],
        reply_to=[settings.SUPPORT_EMAIL],
        headers=headers,
        tags=[notification.template.rsplit("/", 1)[-1].replace("_", "-")],
        metadata={"notification": str(notification.uuid), "ticket": reference or ""},
    )
    message.attach_alternative(html, "text/html")
    for attachment in attached:
        content = bytes(attachment.content)
        name = attachment_handed_out_name(attachment.filename, attachment_served_type(content))
        message.attach(name, content, attachment.content_type)
    return message
