from django.contrib import admin

from accounts.models import Customer
from helpdesk.admin import ReadOnlyAdminMixin


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("number", "full_name", "email", "is_reseller", "account_status", "created_at")
    list_filter = ("account_status", "is_reseller", "product_mailings", "reseller_newsletters")
    search_fields = ("number", "full_name", "email", "phone")
    # The processor's card token is never shown: brand and last four digits only.
    exclude = ("card_token",)
    readonly_fields = ("number", "created_at", "updated_at")
