"""Every link we mail is built here: on SITE_URL, never on the Host a request came with."""

from typing import Any

from django.conf import settings
from django.urls import reverse


def site_url(view: str, *args: Any, **kwargs: Any) -> str:
    """The absolute URL of `view` (a URL name) with `args` or `kwargs`, on SITE_URL."""
    return settings.SITE_URL + reverse(view, args=args or None, kwargs=kwargs or None)
