import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

from helpdesk.deploy import debug_serving_problem

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
application = get_asgi_application()
if not settings.TESTING and (
    _problem := debug_serving_problem(debug=settings.DEBUG, site_url=settings.SITE_URL)
):
    raise ImproperlyConfigured(_problem)
