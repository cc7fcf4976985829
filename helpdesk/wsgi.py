import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from helpdesk.deploy import debug_serving_problem

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
application = get_wsgi_application()
if not settings.TESTING and (
    _problem := debug_serving_problem(debug=settings.DEBUG, site_url=settings.SITE_URL)
):
    raise ImproperlyConfigured(_problem)
