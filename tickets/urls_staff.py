"""Staff queue URLs."""

from django.urls import path

from tickets import staff

app_name = "staff"

urlpatterns = [
    # --- staff queue ---
    path("", staff.queue, name="queue"),
    path("dashboard/", staff.dashboard, name="dashboard"),
    path("audit/", staff.audit_log, name="audit"),
    path("tickets/<str:reference>/", staff.ticket_detail, name="ticket"),
    path("tickets/<str:reference>/presence/", staff.ticket_presence, name="ticket-presence"),
    path("tickets/<str:reference>/claim/", staff.ticket_claim, name="ticket-claim"),
    path("tickets/<str:reference>/assign/", staff.ticket_assign_to, name="ticket-assign"),
    path("tickets/<str:reference>/reply/", staff.ticket_reply, name="ticket-reply"),
    path("tickets/<str:reference>/note/", staff.ticket_note, name="ticket-note"),
    path("tickets/<str:reference>/approve/", staff.ticket_approve_view, name="ticket-approve"),
    path("tickets/<str:reference>/reject/", staff.ticket_reject_view, name="ticket-reject"),
    path("tickets/<str:reference>/resolve/", staff.ticket_resolve_view, name="ticket-resolve"),
    path("tickets/<str:reference>/close/", staff.ticket_close_view, name="ticket-close"),
    path("tickets/<str:reference>/reopen/", staff.ticket_reopen_view, name="ticket-reopen"),
    path("tickets/<str:reference>/priority/", staff.ticket_priority, name="ticket-priority"),
    path("customers/<str:number>/", staff.customer_detail, name="customer"),
    path("customers/<str:number>/unfreeze/", staff.customer_unfreeze, name="customer-unfreeze"),
    path("customers/<str:number>/disclosures/new/", staff.disclosure_new, name="disclosure-new"),
    path("customers/<str:number>/export.json", staff.customer_export_view, name="export"),
]
