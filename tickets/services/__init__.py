"""Every write the help desk makes: one function per action, each owning its transaction.

One module per flow. This package re-exports what the views, API, tasks and tests call; the flows
import each other's modules directly. What several flows share has a module of its own:

- `transitions`: the state machine (`TRANSITIONS`, `ticket_move`, `ticket_actions`);
- `versions`: the version check and saving a change to a locked ticket with its audit row;
- `requester_mail`: what mail to a requester may carry, and acknowledgements' limits;
- `publishing`: queueing tasks on the broker, in batches, through an outage;
- `outbox`: notification rows, sending each once, ESP tracking events;
- `lifecycle`: ticket creation, status actions, assignment, whether a customer may still act;
- `replies`: customer and staff replies and internal notes;
- `verification`: links to the email on record;
- `status_link`: following a request from its status page, without an account;
- `modify`: changes of personal information;
- `freeze`: "this wasn't me": undoing an email change and freezing the account;
- `registration`, `registration_change`, `registration_put_back`: keeping OpenSRS's records in
  step with an email change (offered, chosen, sent by the worker), and putting them back after
  a freeze;
- `password_resend`: OpenSRS password resends;
- `login_password_reset`: a portal login's password reset, mailed through the outbox;
- `opt_out`: mailing preferences, unsubscribe links, mailings;
- `inbound_email`: mail to support@ and billing@;
- `disclosure`: the disclosure register and the customer export;
- `saved_views`: staff members' named queue filters.

Where one flow hands over to another (a confirmed link, a bounced notice), the caller names the
flow by the ticket kind or notification template and imports it inside the function.
"""

from tickets.request_fields import MODIFY_FIELDS
from tickets.services.anonymous import (
    anonymous_request_process,
    anonymous_requests_requeue_due,
)
from tickets.services.contact_link import (
    OPENER_CONFIRMED,
    opener_confirm_refusal,
    ticket_opener_confirm,
    ticket_opener_confirm_by_link,
    ticket_opener_confirmable,
)
from tickets.services.disclosure import customer_export, disclosure_record
from tickets.services.general import request_general
from tickets.services.inbound_email import inbound_email_receive
from tickets.services.lifecycle import (
    ticket_assign,
    ticket_close,
    ticket_create,
    ticket_due_at,
    ticket_priority_set,
    ticket_reject,
    ticket_reopen,
    ticket_resolve,
    ticket_transition,
)
from tickets.services.login_password_reset import password_reset_request
from tickets.services.mailing import mailing_send
from tickets.services.merge import ticket_merge
from tickets.services.modify import request_modify
from tickets.services.modify_approval import (
    MODIFY_NEEDS_SUPERVISOR,
    MODIFY_NEW_EMAIL_UNCONFIRMED,
    NOTHING_TO_APPROVE,
    ModifyConflict,
    modify_approval,
    modify_approvals_waiting,
    modify_approve,
    modify_awaiting_supervisor,
    ticket_approve,
)
from tickets.services.modify_input import (
    MODIFY_SAME_VALUES,
    modify_input_has_card,
)
from tickets.services.opt_out import (
    OPT_OUT_LISTS,
    UnsubscribeLinkOld,
    opt_out_apply,
    preferences_update,
    request_opt_out,
    unsubscribe_by_token,
    unsubscribe_token,
    unsubscribe_token_read,
)
from tickets.services.outbox import (
    PASSWORD_RESET_LOOKUP,
    NotificationRetry,
    notification_mark_failed,
    notification_queue,
    notification_send,
    notifications_requeue_due,
)
from tickets.services.password_resend import (
    RESEND_DETAIL,
    password_resend_process,
    password_resend_requeue_due,
    request_password_resend,
)
from tickets.services.password_resend_steps import (
    PASSWORD_RESEND_MAX_TRIES,
    PasswordResendRetry,
    password_resend_give_up,
)
from tickets.services.replies import EMPTY_MESSAGE, REPLY_TO_CLOSED, ticket_reply_add
from tickets.services.saved_views import saved_view_delete, saved_view_save
from tickets.services.status_link import (
    TRACK_SENT,
    status_link_fill,
    status_link_issue,
    status_link_send,
    status_reply_add,
    track_request,
)
from tickets.services.tracking import notification_tracking_event
from tickets.services.transitions import TRANSITIONS, ticket_actions
from tickets.services.verification import (
    VERIFICATION_INVALID,
    verification_confirm,
    verification_start,
    verifications_expire,
)
from tickets.services.versions import STALE_TICKET

__all__ = [
    "EMPTY_MESSAGE",
    "MODIFY_FIELDS",
    "MODIFY_NEEDS_SUPERVISOR",
    "MODIFY_NEW_EMAIL_UNCONFIRMED",
    "MODIFY_SAME_VALUES",
    "NOTHING_TO_APPROVE",
    "OPENER_CONFIRMED",
    "OPT_OUT_LISTS",
    "PASSWORD_RESEND_MAX_TRIES",
    "PASSWORD_RESET_LOOKUP",
    "REPLY_TO_CLOSED",
    "RESEND_DETAIL",
    "STALE_TICKET",
    "TRACK_SENT",
    "TRANSITIONS",
    "VERIFICATION_INVALID",
    "ModifyConflict",
    "NotificationRetry",
    "PasswordResendRetry",
    "UnsubscribeLinkOld",
    "anonymous_request_process",
    "anonymous_requests_requeue_due",
    "customer_export",
    "disclosure_record",
    "inbound_email_receive",
    "mailing_send",
    "modify_approval",
    "modify_approvals_waiting",
    "modify_approve",
    "modify_awaiting_supervisor",
    "modify_input_has_card",
    "notification_mark_failed",
    "notification_queue",
    "notification_send",
    "notification_tracking_event",
    "notifications_requeue_due",
    "opener_confirm_refusal",
    "opt_out_apply",
    "password_resend_give_up",
    "password_resend_process",
    "password_resend_requeue_due",
    "password_reset_request",
    "preferences_update",
    "request_general",
    "request_modify",
    "request_opt_out",
    "request_password_resend",
    "saved_view_delete",
    "saved_view_save",
    "status_link_fill",
    "status_link_issue",
    "status_link_send",
    "status_reply_add",
    "ticket_actions",
    "ticket_approve",
    "ticket_assign",
    "ticket_close",
    "ticket_create",
    "ticket_due_at",
    "ticket_merge",
    "ticket_opener_confirm",
    "ticket_opener_confirm_by_link",
    "ticket_opener_confirmable",
    "ticket_priority_set",
    "ticket_reject",
    "ticket_reopen",
    "ticket_reply_add",
    "ticket_resolve",
    "ticket_transition",
    "track_request",
    "unsubscribe_by_token",
    "unsubscribe_token",
    "unsubscribe_token_read",
    "verification_confirm",
    "verification_start",
    "verifications_expire",
]
