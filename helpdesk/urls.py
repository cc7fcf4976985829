from django.contrib import admin
from django.urls import include, path

from accounts import views as accounts_views
from accounts.admin import admin_password_change
from helpdesk.metrics import metrics_view

admin.site.login_form = accounts_views.AdminLoginForm

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("admin/login/", accounts_views.admin_login),
    path("admin/password_change/", admin_password_change),
    path("admin/", admin.site.urls),
    path("anymail/", include(("helpdesk.webhooks", "anymail"))),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("tickets.urls_api")),
    path("staff/", include("tickets.urls_staff")),
    # Before Django's own: a logged-in customer's choice is also kept for their emails.
    path("i18n/setlang/", accounts_views.language_set, name="set_language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tickets.urls")),
]

handler400 = "helpdesk.errors.bad_request"
handler403 = "helpdesk.errors.permission_denied"
handler404 = "helpdesk.errors.page_not_found"
handler500 = "helpdesk.errors.server_error"
