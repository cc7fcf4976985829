"""Links we mail are built on SITE_URL in one place, never on the Host a request came with."""

import re
from pathlib import Path

from django.urls import set_script_prefix

import accounts
import domains
import helpdesk
import tickets
from helpdesk.links import site_url

APPS = [Path(app.__file__).parent for app in (accounts, domains, helpdesk, tickets)]
BUILT_ON_SITE_URL = re.compile(r"settings\.SITE_URL\s*\+|\{settings\.SITE_URL\}")


def test_a_link_is_the_view_on_site_url(settings):
    settings.SITE_URL = "https://help.example.test"

    assert site_url("portal:verify", "tok") == "https://help.example.test/verify/tok/"
    assert site_url("portal:preferences") == "https://help.example.test/my/preferences/"
    assert site_url(
        "accounts:password_reset_confirm", uidb64="MQ", token="set-password"
    ).startswith("https://help.example.test/")


def test_no_other_module_builds_a_link_on_site_url():
    builders = [
        str(path)
        for app in APPS
        for path in app.rglob("*.py")
        if path.name != "links.py" and BUILT_ON_SITE_URL.search(path.read_text())
    ]
    assert builders == []


def test_a_link_made_while_a_request_is_answered_ignores_its_script_name(settings):
    # Django's WSGI handler sets the script prefix from each request's SCRIPT_NAME, which
    # gunicorn takes from a `SCRIPT_NAME` header a trusted proxy passed on from a client.
    settings.SITE_URL = "https://help.example.test"
    set_script_prefix("/elsewhere/")
    try:
        links = [site_url("portal:preferences"), site_url("portal:verify", "tok")]
    finally:
        set_script_prefix("/")

    assert links == [
        "https://help.example.test/my/preferences/",
        "https://help.example.test/verify/tok/",
    ]
