from django.contrib import admin

from domains.models import Domain
from helpdesk.admin import ReadOnlyAdminMixin


@admin.register(Domain)
class DomainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "customer", "registrant_email", "registrant_email_status", "synced_at")
    list_filter = ("registrant_email_status",)
    search_fields = ("name", "registrant_email", "customer__email")
