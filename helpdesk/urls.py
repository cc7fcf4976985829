from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("tickets.urls_api")),
    path("staff/", include("tickets.urls_staff")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tickets.urls")),
]
