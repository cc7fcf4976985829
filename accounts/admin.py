from contextvars import ContextVar

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.models import ApiToken, Customer
from accounts.services import user_password_set
from helpdesk.admin import ReadOnlyAdminMixin

# Django's admin builds its password form from the user alone, so the form learns who is
# acting (for the audit row) and which session to keep from the view, through this variable.
_password_request: ContextVar[HttpRequest] = ContextVar("admin_password_request")


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("number", "full_name", "email", "is_reseller", "account_status", "created_at")
    list_filter = ("account_status", "is_reseller", "product_mailings", "reseller_newsletters")
    search_fields = ("number", "full_name", "email", "phone")
    # The processor's card token is never shown: brand and last four digits only.
    exclude = ("card_token",)
    readonly_fields = ("number", "created_at", "updated_at")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who holds which tokens; revoking is the owner's (or a password change's), audited."""

    list_display = ("name", "user", "created", "expiry", "last_used_at")
    search_fields = ("name", "user__username")
    exclude = ("digest", "token_key")


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" form, saved through the one password service.

    So the change is on the audit chain and the user's API tokens and other sessions are revoked.
    """

    def save(self, commit: bool = True) -> User:
        request = _password_request.get()
        if not isinstance(request.user, User):  # the admin lets no anonymous user this far
            raise PermissionDenied
        usable = self.cleaned_data.get("set_usable_password", True)
        own = request.user.pk == self.user.pk
        return user_password_set(
            user=self.user,
            password=self.cleaned_data["password1"] if usable else None,
            actor=request.user,
            how="change" if usable else "disable",
            keep_session_key=request.session.session_key if own else None,
        )


admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    change_password_form = AuditedPasswordChangeForm

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        token = _password_request.set(request)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_request.reset(token)
