from django.contrib import admin

from accounts.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("number", "full_name", "email", "is_reseller", "account_status", "created_at")
    list_filter = ("account_status", "is_reseller", "product_mailings", "reseller_newsletters")
    search_fields = ("number", "full_name", "email", "phone")
    readonly_fields = (
        "number",
        "card_brand",
        "card_last4",
        "card_token",
        "created_at",
        "updated_at",
    )
    raw_id_fields = ("user",)
