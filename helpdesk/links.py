"""Every link we mail is built here: on SITE_URL, never on the Host a request came with."""

from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, reverse


def site_url(view: str, *args: Any, **kwargs: Any) -> str:
    """The absolute URL of `view` (a URL name) with `args` or `kwargs`, on SITE_URL.

    Without the request's script prefix, which `reverse` puts first: it is the WSGI server's
    SCRIPT_NAME, which gunicorn takes from a `SCRIPT_NAME` header of a trusted proxy that
    passed a client's on. SITE_URL alone says where the site is, as in the worker.
    """
    path = reverse(view, args=args or None, kwargs=kwargs or None)
    return settings.SITE_URL + "/" + path.removeprefix(get_script_prefix())
