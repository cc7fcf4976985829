"""Staff queue URLs."""

from django.urls import path

from tickets.staff import actions, approvals, audit, bulk, customer, dashboard, queue, ticket

app_name = "staff"

urlpatterns = [
    # --- staff queue ---
    path("", queue.queue, name="queue"),
    path("bulk/", bulk.queue_bulk, name="bulk"),
    path("views/", queue.saved_view_create, name="saved-view-create"),
    path("views/<int:pk>/delete/", queue.saved_view_remove, name="saved-view-delete"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("audit/", audit.audit_log, name="audit"),
    path("approvals/", approvals.approvals, name="approvals"),
    path("tickets/<str:reference>/", ticket.ticket_detail, name="ticket"),
    path("tickets/<str:reference>/presence/", ticket.ticket_presence, name="ticket-presence"),
    path(
        "tickets/<str:reference>/attachments/<int:attachment_id>/",
        ticket.ticket_attachment,
        name="ticket-attachment",
    ),
    path("tickets/<str:reference>/claim/", actions.ticket_claim, name="ticket-claim"),
    path("tickets/<str:reference>/assign/", actions.ticket_assign_to, name="ticket-assign"),
    path("tickets/<str:reference>/reply/", actions.ticket_reply, name="ticket-reply"),
    path("tickets/<str:reference>/note/", actions.ticket_note, name="ticket-note"),
    path("tickets/<str:reference>/approve/", actions.ticket_approve_view, name="ticket-approve"),
    path("tickets/<str:reference>/reject/", actions.ticket_reject_view, name="ticket-reject"),
    path("tickets/<str:reference>/resolve/", actions.ticket_resolve_view, name="ticket-resolve"),
    path("tickets/<str:reference>/close/", actions.ticket_close_view, name="ticket-close"),
    path("tickets/<str:reference>/reopen/", actions.ticket_reopen_view, name="ticket-reopen"),
    path("tickets/<str:reference>/priority/", actions.ticket_priority, name="ticket-priority"),
    path("tickets/<str:reference>/merge/", actions.ticket_merge_view, name="ticket-merge"),
    path(
        "tickets/<str:reference>/registration/put-back/",
        actions.ticket_put_back_view,
        name="ticket-put-back",
    ),
    path("customers/<str:number>/", customer.customer_detail, name="customer"),
    path("customers/<str:number>/unfreeze/", customer.customer_unfreeze, name="customer-unfreeze"),
    path("customers/<str:number>/disclosures/new/", customer.disclosure_new, name="disclosure-new"),
    path("customers/<str:number>/export.json", customer.customer_export_view, name="export"),
]
