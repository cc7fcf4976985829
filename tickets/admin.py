from django.contrib import admin

from tickets.models import ActionLog, Disclosure, FieldChange, Message, Notification, Ticket


class FieldChangeInline(admin.TabularInline):
    model = FieldChange
    extra = 0
    readonly_fields = ("field", "old_value", "new_value", "applied_at")
    can_delete = False


class MessageInline(admin.StackedInline):
    model = Message
    extra = 0
    readonly_fields = ("author", "author_user", "channel", "internal", "body", "created_at")
    can_delete = False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
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
    raw_id_fields = ("customer", "domain", "assignee")
    # Status changes go through the services (and the audit log), never through the admin form.
    readonly_fields = ("reference", "status", "version", "resolved_at", "closed_at", "created_at")
    inlines = [FieldChangeInline, MessageInline]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
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
    raw_id_fields = ("ticket",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ActionLog)
class ActionLogAdmin(admin.ModelAdmin):
    list_display = ("sequence", "created_at", "actor", "action", "ticket")
    list_filter = ("action",)
    search_fields = ("actor", "action", "ticket__reference")
    raw_id_fields = ("ticket", "customer")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Disclosure)
class DisclosureAdmin(admin.ModelAdmin):
    list_display = ("customer", "disclosed_to", "legal_basis", "disclosed_at", "recorded_by")
    raw_id_fields = ("customer", "recorded_by")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
