"""Satisfaction: the resolution email's "Did this solve it?" and the requester's answer.

The two links are one `Verification` of purpose SATISFACTION (the status link's scheme: random,
stored as a hash, mailed only to the ticket's contact address, reusable until it expires) with the
answer in the path. Following a link only shows a confirm button, because mail scanners follow
links; the POST records the answer. One answer per ticket: a later POST replaces it, audited.
"""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from helpdesk.exceptions import ApplicationError
from helpdesk.links import site_url
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import audit_record
from tickets.lock_objects import satisfaction_lock
from tickets.models import Satisfaction, Ticket, Verification
from tickets.redaction import redact_card_numbers
from tickets.selectors.status_page import status_link_find
from tickets.services.lifecycle import requester_account_open_locked
from tickets.services.verification import verification_issue, verification_link_lock_live

SATISFACTION_TTL = timedelta(days=30)
SATISFACTION_COMMENT_MAX = 2000
SATISFACTION_LINK_UNKNOWN = gettext_noop(
    "We do not know this link. Check that it was copied whole from our email."
)
SATISFACTION_LINK_EXPIRED = gettext_noop(
    "This link has expired: answers are taken for 30 days after a request is resolved. "
    "If something is still not right, reply to our email or make a new request."
)
SATISFACTION_TICKET_REOPENED = gettext_noop(
    "This request is open again since we wrote to you, so there is no resolution to rate yet. "
    "We will ask again once it is resolved."
)
SATISFACTION_RESOLUTION_EARLIER = gettext_noop(
    "This link asked about an earlier resolution of this request: it was opened again since and "
    "resolved anew. Our latest email about it asks about the latest one."
)
SATISFACTION_BAD_ANSWER = gettext_noop("Choose yes or no.")
# The statuses in which a ticket's resolution stands, and so may be rated.
SATISFACTION_STATUSES = frozenset({Ticket.Status.RESOLVED, Ticket.Status.CLOSED})

_REFUSALS = {
    "unknown": (SATISFACTION_LINK_UNKNOWN, 404),
    "expired": (SATISFACTION_LINK_EXPIRED, 410),
    "reopened": (SATISFACTION_TICKET_REOPENED, 409),
    "superseded": (SATISFACTION_RESOLUTION_EARLIER, 409),
}


class SatisfactionLinkInvalid(ApplicationError):
    """Why a link takes no answer (`state`): unknown, expired, reopened or superseded.

    Unknown is a 404 and expired a 410; a ticket reopened since, or resolved again since (the
    link was for an earlier resolution), a 409.
    """

    def __init__(self, state: str) -> None:
        self.state = state if state in _REFUSALS else "unknown"
        message, self.status_code = _REFUSALS[self.state]
        super().__init__(message)


def satisfaction_link_check(*, state: str, verification: Verification | None) -> Verification:
    """The live link's verification, or SatisfactionLinkInvalid saying why it takes no answer.

    A link answers for the resolution it was mailed with (`resolution_at`) and no other: once
    the ticket was reopened (the resolution taken back) it takes no answer, nor once it was
    resolved again since; the latest resolution's email carries links of its own.
    """
    if state != "live" or verification is None:
        raise SatisfactionLinkInvalid(state)
    satisfaction_resolution_check(verification.ticket, verification)
    return verification


def satisfaction_resolution_check(ticket: Ticket, verification: Verification) -> None:
    """SatisfactionLinkInvalid unless `ticket` stands resolved by the link's own resolution."""
    if ticket.status not in SATISFACTION_STATUSES:
        raise SatisfactionLinkInvalid("reopened")
    if ticket.resolved_at is None or ticket.resolved_at != verification.resolution_at:
        raise SatisfactionLinkInvalid("superseded")


def satisfaction_links(*, ticket: Ticket, recipient: str) -> dict[str, Any]:
    """What the resolution email adds: `satisfaction_yes` and `satisfaction_no`, from SITE_URL.

    Runs in the caller's transaction; the URLs go only into an email to `recipient`.
    """
    if not recipient:
        return {}
    _verification, token = verification_issue(
        ticket=ticket,
        purpose=Verification.Purpose.SATISFACTION,
        send_to=recipient,
        ttl=SATISFACTION_TTL,
        resolution_at=ticket.resolved_at,
    )
    return {
        f"satisfaction_{answer}": site_url("portal:satisfaction", token, answer)
        for answer in Satisfaction.Answer.values
    }


def satisfaction_record(*, token: str, answer: str, comment: str, client_key: str) -> Satisfaction:
    """Record (or change) the answer of the ticket whose live satisfaction link this is."""
    rate_limit_hit(scope="request_per_client", key=client_key)
    if answer not in Satisfaction.Answer.values:
        raise ApplicationError(SATISFACTION_BAD_ANSWER)
    # Redacted before it is cut to length, so no part of a card number is left behind.
    comment = redact_card_numbers(comment or "")[0].strip()[:SATISFACTION_COMMENT_MAX]
    state, found = status_link_find(token=token, purpose=Verification.Purpose.SATISFACTION)
    verification = satisfaction_link_check(state=state, verification=found)
    actor = f"satisfaction-link:{verification.sent_to}"
    with transaction.atomic():
        # The account first (its lock comes before the ticket's): frozen or closed, its
        # requester's answer is refused as their reply would be.
        requester_account_open_locked(verification.ticket)
        # The link again, under the ticket's lock and its own: a freeze ended it meanwhile.
        ticket = verification_link_lock_live(verification=verification)
        if ticket is None:
            raise SatisfactionLinkInvalid("expired")
        satisfaction_resolution_check(ticket, verification)  # reopened since it was read
        now = timezone.now()
        current = satisfaction_lock(ticket=ticket)
        if current is None:
            current = Satisfaction(
                ticket=ticket,
                answer=answer,
                comment=comment,
                agent_id=ticket.assignee_id,
                answered_at=now,
            )
            current.full_clean()
            current.save(force_insert=True)
            audit_record(
                actor=actor,
                action="satisfaction.recorded",
                ticket=ticket,
                details={"answer": answer, "comment": bool(comment)},
            )
            return current
        if current.answer == answer and current.comment == comment:
            return current  # the same answer again: nothing changed, nothing to audit
        previous = current.answer
        current.answer = answer
        current.comment = comment
        current.answered_at = now
        current.full_clean()
        current.save(update_fields=["answer", "comment", "answered_at", "updated_at"])
        audit_record(
            actor=actor,
            action="satisfaction.changed",
            ticket=ticket,
            details={"from": previous, "to": answer, "comment": bool(comment)},
        )
        return current
