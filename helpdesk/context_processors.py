from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    """Company name and addresses for every template."""
    return {
        "COMPANY_NAME": settings.COMPANY_NAME,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "BILLING_EMAIL": settings.BILLING_EMAIL,
        "SITE_URL": settings.SITE_URL,
    }
