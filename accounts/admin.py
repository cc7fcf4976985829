from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import forms as admin_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
)
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from accounts.login_devices import login_device_cookie_set
from accounts.models import ApiToken, Customer
from accounts.selectors import (
    customer_of_login,
    group_access_read,
    login_access_read,
)
from accounts.services import (
    login_addresses_refusal,
    login_change_record,
    login_delete_record,
    login_roles_refusal,
    password_set_refusal,
    role_change_record,
    role_delete_record,
    user_password_set,
)
from helpdesk.admin import ReadOnlyAdminMixin
from helpdesk.validators import without_control_characters
from tickets.selectors.tickets import logins_named_in_records

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

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean() or {}
        usable = cleaned.get("set_usable_password", True)
        refusal = password_set_refusal(
            user=self.user,
            actor=_admin_actor(_password_request.get()),
            password=cleaned.get("password1") if usable else None,
        )
        if refusal:
            self.add_error("password1", refusal)
        return cleaned

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


class AuditedOwnPasswordChangeForm(admin_forms.AdminPasswordChangeForm):
    """The admin's "change my password" page (any staff login), saved by the password service.

    Django's form saves the user itself: no audit row, and the API tokens issued under the old
    password kept working.
    """

    def save(self, commit: bool = True) -> User:
        request = _password_request.get()
        return user_password_set(
            user=self.user,
            password=self.cleaned_data["new_password1"],
            actor=self.user,
            how="change",
            keep_session_key=request.session.session_key,
        )


class _OwnPasswordChangeView(auth_views.PasswordChangeView):
    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # The browser's device cookie, of the old password, would count as none from its next
        # failed attempt on (accounts.login_devices): it is given one of the new.
        login_device_cookie_set(response, user=form.user)
        return response


def _own_password_change(request: HttpRequest) -> HttpResponseBase:
    # AdminSite.password_change with the audited form (Django's names its form class inline).
    request.current_app = admin.site.name
    view = _OwnPasswordChangeView.as_view(
        form_class=AuditedOwnPasswordChangeForm,
        success_url=reverse("admin:password_change_done", current_app=admin.site.name),
        extra_context=admin.site.each_context(request),
    )
    token = _password_request.set(request)
    try:
        return view(request)
    finally:
        _password_request.reset(token)


# Mounted at the admin's own address, before the admin's URLs; the admin's login check first.
admin_password_change = admin.site.admin_view(_own_password_change, cacheable=True)


# What a login or role could do before the admin saved it: read in save_model, recorded on the
# audit chain by save_related, once its groups and permissions are saved too.
_access_before: ContextVar[dict[str, Any] | None] = ContextVar("admin_access_before", default=None)


def _admin_actor(request: HttpRequest) -> User:
    if not isinstance(request.user, User):  # the admin lets no anonymous user this far
        raise PermissionDenied
    return request.user


class AccessAuditedAdmin(admin.ModelAdmin):
    """The admin of logins or roles: every save and delete of one is on the audit chain.

    Each subclass defines how its object's access is read and recorded (the accounts services).
    """

    access_read: Callable[[Any], dict[str, Any]]
    access_record: Callable[[Any, User, dict[str, Any] | None], None]
    deletion_record: Callable[[Any, User], None]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        _access_before.set(self.access_read(type(obj).objects.get(pk=obj.pk)) if change else None)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        self.access_record(form.instance, _admin_actor(request), _access_before.get())

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.deletion_record(obj, _admin_actor(request))
        super().delete_model(request, obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.deletion_record(obj, _admin_actor(request))
        super().delete_queryset(request, queryset)


admin.site.unregister(User)
admin.site.unregister(Group)


class OneLineFieldsMixin:
    """A model form whose `one_line` fields refuse control characters, as the services do.

    Staff pages show these (an agent's name on a reply, a role's name): an override there
    would make one read as another. Django's own models carry no such validator, so their
    admin forms, the only place these fields are written, carry it.
    """

    one_line: tuple[str, ...] = ()
    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.one_line:
            if name in self.fields:
                self.fields[name].validators.append(without_control_characters)


class LoginAddressesFormMixin:
    """A login form that refuses an address another login or a customer holds, on its field.

    The rule is the accounts service's (`login_addresses_refusal`), checked on the login as
    the form would save it.
    """

    instance: User
    fields: dict[str, forms.Field]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean
        customer = customer_of_login(self.instance) if self.instance.pk else None
        for field, why in login_addresses_refusal(user=self.instance, customer=customer).items():
            self.add_error(field if field in self.fields else None, why)  # type: ignore[attr-defined]


class LoginRolesFormMixin:
    """A login form that refuses a staff flag, role or permission on a customer's login.

    The rule is the accounts service's (`login_roles_refusal`), checked on the login as the
    form would save it, its groups and permissions included (saved after the login).
    """

    instance: User
    cleaned_data: dict[str, Any]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean
        customer = customer_of_login(self.instance) if self.instance.pk else None
        refusal = login_roles_refusal(
            user=self.instance,
            customer=customer,
            groups=self.cleaned_data.get("groups"),
            permissions=self.cleaned_data.get("user_permissions"),
        )
        if refusal:
            self.add_error(None, refusal)  # type: ignore[attr-defined]


class StaffUserChangeForm(
    LoginRolesFormMixin, LoginAddressesFormMixin, OneLineFieldsMixin, UserChangeForm
):
    one_line = ("first_name", "last_name", "email")


class StaffUserCreationForm(LoginAddressesFormMixin, AdminUserCreationForm):
    pass


class RoleForm(OneLineFieldsMixin, forms.ModelForm):
    one_line = ("name",)

    class Meta:
        model = Group
        fields = ("name", "permissions")


@admin.register(User)
class AuditedUserAdmin(AccessAuditedAdmin, UserAdmin):
    """Django's user admin, with every change of a login on the audit chain.

    A customer's login keeps the address on record (its username and email follow a verified
    change request, `modify_login_for`): changed here, its password resets would go to an
    address its owner never confirmed.
    """

    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    change_password_form = AuditedPasswordChangeForm

    def access_read(self, obj: Any) -> dict[str, Any]:
        return login_access_read(obj)

    def access_record(self, obj: Any, actor: User, before: dict[str, Any] | None) -> None:
        login_change_record(user=obj, actor=actor, before=before)

    def deletion_record(self, obj: Any, actor: User) -> None:
        login_delete_record(user=obj, actor=actor)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and logins_named_in_records(pks=[obj.pk]):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # The list's bulk action asks has_delete_permission without an object.
        if logins_named_in_records(pks=list(queryset.values_list("pk", flat=True))):
            raise PermissionDenied
        super().delete_queryset(request, queryset)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and customer_of_login(obj) is not None:
            return (*fields, "username", "email")
        return fields

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        token = _password_request.set(request)
        try:
            response = super().user_change_password(request, id, form_url)
        finally:
            _password_request.reset(token)
        if request.method == "POST" and response.status_code == 302 and id == str(request.user.pk):
            # One's own password, changed here: this browser keeps a device cookie that counts,
            # as on the admin's "change my password" page.
            own = User.objects.select_related("customer", "login_state").get(pk=int(id))
            if own.has_usable_password():
                login_device_cookie_set(response, user=own)
        return response


@admin.register(Group)
class AuditedGroupAdmin(AccessAuditedAdmin, GroupAdmin):
    """Django's group admin, with every change of a staff role on the audit chain."""

    form = RoleForm

    def access_read(self, obj: Any) -> dict[str, Any]:
        return group_access_read(obj)

    def access_record(self, obj: Any, actor: User, before: dict[str, Any] | None) -> None:
        role_change_record(group=obj, actor=actor, before=before)

    def deletion_record(self, obj: Any, actor: User) -> None:
        role_delete_record(group=obj, actor=actor)
