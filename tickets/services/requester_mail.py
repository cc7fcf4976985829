"""What mail to a requester may carry, and how often a typed address may be acknowledged."""

from accounts.selectors import email_canonical
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import rate_limit_client_key, rate_limit_hits
from tickets.models import Ticket
from tickets.services.inbound_parse import address_local_base


def mailbox_key(address: str) -> str:
    """What a limit on mail to one address counts `address` as: the mailbox it reaches.

    Compared canonically (case, Unicode width, IDNA) and without its +tag: victim+1@ and
    victim+2@ are delivered to victim@, as inbound mail from them is counted too.
    """
    return "@".join(address_local_base(address))


def acknowledgement_allowed(
    address: str, *, client_key: str | None, sender_authenticated: bool = False
) -> bool:
    """Whether a typed address may get one more "we received your request" email now.

    Counted for every acknowledgement to an address nobody proved theirs (web forms, the API,
    inbound email), so the help desk cannot be made to mail a stranger over and over: per
    address ("ack_per_address"), per its domain from the client that asked ("ack_per_domain"),
    and per domain from every client ("ack_per_domain_all_clients", far higher, counting only
    what the two before let through). So one person typing addresses of a large free-mail domain
    spends their own allowance, not that of everyone there. Past a limit the request goes on
    without one; nothing is refused. The address is counted as the mailbox it reaches
    (mailbox_key): its spellings in other cases, in fullwidth letters or with a +tag.

    Mail has no client address (`client_key` None). Mail whose sender our receiving server
    authenticated (`sender_authenticated`) is its own client, keyed by that address; all other
    mail is one client, "mail", so forged From addresses of a domain share one allowance and
    leave that of the domain's real senders alone.
    """
    canonical = email_canonical(address)
    domain = canonical.rpartition("@")[2]
    mailbox = mailbox_key(address)
    if client_key:
        client = rate_limit_client_key(client_key)
    elif sender_authenticated:
        client = f"mail:{canonical}"
    else:
        client = "mail"
    try:
        rate_limit_hits(("ack_per_address", mailbox), ("ack_per_domain", f"{domain} {client}"))
        rate_limit_hits(("ack_per_domain_all_clients", domain))
    except RateLimited:
        return False
    return True


def requester_words_mailable(ticket: Ticket, recipient: str) -> bool:
    """Whether an email to `recipient` may carry the requester's own words (subject, quote).

    Only to the email on record of the customer who asked (signed in, or by mail our server
    authenticated as theirs): an address that was typed (on a form without a login, or a
    customer's other address) gets the reference and our own words, so nobody can make the help
    desk carry their text to a stranger.
    """
    customer = ticket.customer
    if customer is None or ticket.customer_by_contact:
        return False
    return email_canonical(recipient) == email_canonical(customer.email)


def ticket_subject_mailable(ticket: Ticket, recipient: str) -> str:
    """The ticket's subject when an email to `recipient` may carry it; "" otherwise.

    A general request's subject is its requester's own words (`requester_words_mailable`
    decides); the other kinds' subjects are ours.
    """
    if ticket.kind != Ticket.Kind.GENERAL or requester_words_mailable(ticket, recipient):
        return ticket.subject
    return ""


def new_email_link_mailable(address: str) -> bool:
    """Whether one more link to confirm `address` as a new email on record may be mailed.

    Counted per mailbox (mailbox_key), whoever asks: past `new_email_link_per_address` the
    request is taken as before and nothing more is mailed, so signed-in customers cannot make
    the help desk mail a stranger, and nobody is refused for what others asked.
    """
    try:
        rate_limit_hits(("new_email_link_per_address", mailbox_key(address)))
    except RateLimited:
        return False
    return True
