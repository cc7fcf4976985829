import json

from django.contrib import admin

from helpdesk.admin import ReadOnlyAdminMixin
from tickets.models import (
    ActionLog,
    Disclosure,
    FieldChange,
    Message,
    Notification,
    Ticket,
    Verification,
)
from tickets.services.outbox import notification_shown

# Every model here is view-only (ReadOnlyAdminMixin): tickets, their history and the outbox
# change only through the services, which validate and write the audit log.


class FieldChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FieldChange
    extra = 0
    readonly_fields = ("field", "old_value", "new_value", "applied_at")


class MessageInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Message
    extra = 0
    fields = ("author", "author_user", "channel", "internal", "body", "created_at")
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "kind",
        "status",
        "priority",
        "customer",
        "domain",
        "assignee",
        "created_at",
    )
    list_filter = ("kind", "status", "priority", "channel")
    search_fields = ("reference", "subject", "customer__email", "domain__name", "contact_email")
    readonly_fields = ("reference", "created_at", "updated_at")
    inlines = [FieldChangeInline, MessageInline]


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ticket", "purpose", "sent_to", "created_at", "expires_at", "used_at")
    list_filter = ("purpose",)
    search_fields = ("ticket__reference", "sent_to")
    # Only the token's hash is stored; even that stays out of the page.
    exclude = ("token_hash",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "template",
        "recipient",
        "status",
        "attempts",
        "ticket",
        "created_at",
        "sent_at",
    )
    list_filter = ("status", "template")
    search_fields = ("recipient", "esp_message_id", "ticket__reference")
    # The context and headers without the links that carry live tokens: reading a row must
    # not let anyone confirm a request, freeze an account, sign in as its recipient or
    # unsubscribe them.
    exclude = ("context", "headers")
    readonly_fields = ("context_without_links", "headers_without_links")

    @admin.display(description="context (links hidden)")
    def context_without_links(self, obj: Notification) -> str:
        return json.dumps(notification_shown(obj)["context"], indent=2, default=str)

    @admin.display(description="headers (links hidden)")
    def headers_without_links(self, obj: Notification) -> str:
        return json.dumps(notification_shown(obj)["headers"], indent=2, default=str)


@admin.register(ActionLog)
class ActionLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("sequence", "created_at", "actor", "action", "ticket")
    list_filter = ("action",)
    search_fields = ("actor", "action", "ticket__reference")


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "disclosed_to", "legal_basis", "disclosed_at", "recorded_by")
