"""Portal login, logout, password reset and language choice."""

from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language

from accounts.login_devices import login_device_cookie_set
from accounts.selectors import (
    api_token_list,
    customer_for_user,
    is_staff_login,
    is_staff_member,
    password_reset_logins,
)
from accounts.services import (
    api_token_issue,
    api_token_revoke,
    customer_language_set,
    user_password_set,
)
from helpdesk.exceptions import ApplicationError, RateLimited
from helpdesk.ratelimit import (
    client_ip,
    login_attempt_count,
    login_succeeded,
    rate_limit_hits,
)
from helpdesk.refusals import refusal_form_errors, refused
from helpdesk.types import AuthenticatedHttpRequest
from tickets.services import password_reset_request

RESET_THROTTLED = _("Too many requests. Please wait a little and try again.")
STAFF_HOME = "/staff/"


class ThrottledLoginFormMixin:
    """Count the attempt with the one login limiter before the password is checked."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    throttled: RateLimited | None = None

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        client, device = "", None
        if self.request is not None:
            client = client_ip(self.request)
            device = self.request.COOKIES.get(settings.LOGIN_DEVICE_COOKIE_NAME)
        try:
            login_attempt_count(client=client, username=username, device_cookie=device)
        except RateLimited as exc:
            self.throttled = exc
            raise ValidationError(exc.message, code="throttled") from None
        cleaned = super().clean()  # type: ignore[misc]  # AuthenticationForm.clean
        login_succeeded(client=client, username=username, device_cookie=device)
        return cleaned


class LoginForm(ThrottledLoginFormMixin, auth_forms.AuthenticationForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Email address or staff username")


class AdminLoginForm(ThrottledLoginFormMixin, AdminAuthenticationForm):
    """The admin's login form, under the same limiter as the portal's.

    Signs in the logins the admin site lets in (`is_staff_login`): not a customer's, whatever
    its flags, which reads as a wrong password does.
    """

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        if not is_staff_login(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


def login_throttled_status(response: HttpResponse) -> HttpResponse:
    """A login page whose form was refused by the limiter answers 429 with Retry-After."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    exc = getattr(form, "throttled", None)
    if isinstance(exc, RateLimited):
        return refused(response, exc)
    return response


def admin_login(request: HttpRequest) -> HttpResponse:
    """The Django admin's login view with the shared login limiter."""
    response = admin.site.login(request)
    # Only a login whose password was right (and may use the admin) is redirected from a POST.
    if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
        login_device_cookie_set(response, user=request.user)
    return login_throttled_status(response)


class LoginView(auth_views.LoginView):
    """Django's login, with failures limited per client address and per username."""

    template_name = "registration/login.html"
    form_class = LoginForm

    def form_invalid(self, form: auth_forms.AuthenticationForm) -> HttpResponse:
        return login_throttled_status(super().form_invalid(form))

    def form_valid(self, form: auth_forms.AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        login_device_cookie_set(response, user=form.get_user())
        customer = customer_for_user(form.get_user())
        if customer is not None and settings.LANGUAGE_COOKIE_NAME not in self.request.COOKIES:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                customer.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response

    def get_default_redirect_url(self) -> str:
        if is_staff_member(self.request.user):
            return STAFF_HOME
        if customer_for_user(self.request.user) is not None:
            return reverse("portal:my-tickets")
        return reverse("portal:home")


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Queue the lookup of the address in the outbox; the worker mails the links.

    Django's form looks the logins up and sends while the requester waits, which takes longer
    for an address with a login than for one without. Here every valid address costs the same
    one outbox row (`password_reset_request`).
    """

    def get_users(self, email: str) -> Iterator[User]:
        return iter(password_reset_logins(email=email))

    def save(self, *args: Any, **kwargs: Any) -> None:
        password_reset_request(email=self.cleaned_data["email"])


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            # Per client and in all: an address is never refused (the worker coalesces).
            rate_limit_hits(
                ("request_per_client", f"reset:{client_ip(request)}"), ("request_global", "all")
            )
        except RateLimited as exc:
            form = self.form_class(initial={"email": request.POST.get("email", "")[:254]})
            context = self.get_context_data(form=form, throttled=RESET_THROTTLED)
            return refused(self.render_to_response(context), exc)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: auth_forms.PasswordResetForm) -> HttpResponse:
        try:
            return super().form_valid(form)
        except ValidationError as exc:  # an address the service refuses to keep
            refusal_form_errors(form, exc)
            return self.form_invalid(form)

    def form_invalid(self, form: auth_forms.PasswordResetForm) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's set-new-password step, saved by the service that audits it and revokes.

    A link that is not valid (used, expired, altered) is a 404 page saying so, a new password
    the form refuses a 400, where Django answers both with a 200.
    """

    success_url = reverse_lazy("accounts:password_reset_complete")

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        if not context.get("validlink"):
            response.status_code = 404
        return response

    def form_invalid(self, form: auth_forms.SetPasswordForm) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response

    def form_valid(self, form: auth_forms.SetPasswordForm) -> HttpResponse:
        # The holder of the emailed link acts; this request's session (not logged in as the
        # user: post_reset_login stays off) is kept for the "done" page.
        user_password_set(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            actor=form.user,
            how="reset",
            keep_session_key=self.request.session.session_key,
        )
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        response = HttpResponseRedirect(self.get_success_url())
        # This browser's device cookie, of the old password, would count as none from its next
        # failed attempt on: a mistyped new password would leave it to the limit from every
        # client, often full when a password is reset. It is given one of the new password.
        login_device_cookie_set(response, user=form.user)
        return response


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Django's set_language, and for a logged-in customer also remember the choice."""
    response = set_language(request)
    language = request.POST.get("language", "")
    customer = customer_for_user(request.user)
    if customer is not None and language in dict(settings.LANGUAGES):
        customer_language_set(customer=customer, language=language)
    return response


# --- API tokens (any login: customers and staff) ---

TOKEN_REVOKED = _("The token “%(name)s” was revoked; it no longer works.")


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        help_text=_("What the token is for, e.g. “billing script”."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Valid for (days)"),
        min_value=1,
        max_value=settings.API_TOKEN_MAX_TTL_DAYS,
        initial=settings.API_TOKEN_TTL_DAYS,
    )


def _api_tokens_page(
    request: AuthenticatedHttpRequest, form: ApiTokenForm, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {"form": form, "tokens": list(api_token_list(user=request.user)), **extra}
    return render(request, "registration/api_tokens.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """List the login's API tokens and make a new one (its key is shown once, on this page)."""
    if request.method != "POST":
        return _api_tokens_page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _api_tokens_page(request, form, status=400)
    try:
        issued = api_token_issue(
            user=request.user,
            name=form.cleaned_data["name"],
            ttl_days=form.cleaned_data["expires_in_days"],
        )
    except (ApplicationError, ValidationError) as exc:
        refusal_form_errors(form, exc)
        return _api_tokens_page(request, form, status=400)
    # Rendered, not redirected: the key must not wait in a session or a message.
    response = _api_tokens_page(request, ApiTokenForm(), issued=issued)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_revoke_view(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the login's own tokens; anyone else's is a 404."""
    token = api_token_list(user=request.user).filter(pk=token_id).first()
    if token is None or not api_token_revoke(user=request.user, token_id=token_id):
        raise Http404
    messages.success(request, TOKEN_REVOKED % {"name": token.name})
    return redirect("accounts:api-tokens")
