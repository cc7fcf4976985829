"""What a production deployment (DEBUG=0) must configure.

One list of problems, read from settings values: `helpdesk.settings` refuses to start with
DEBUG=0 while it is not empty, and `manage.py check --deploy` reports it under DEBUG=1 too.
This module imports nothing from Django's settings, so the settings module can use it.
"""

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
DEV_OPENSRS_URL = "http://127.0.0.1:8001/"
DEV_OPENSRS_USERNAME = "exabytes-demo"
DEV_OPENSRS_KEY = "demo-opensrs-key-0123456789abcdef"

# Backends that deliver nothing to anyone: fine for development and tests only.
NON_DELIVERING_BACKENDS = (
    "anymail.backends.console.",
    "anymail.backends.test.",
    "django.core.mail.backends.console.",
    "django.core.mail.backends.locmem.",
    "django.core.mail.backends.dummy.",
    "django.core.mail.backends.filebased.",
)
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# The ANYMAIL_* variables each ESP's backend cannot send without (anymail's own names).
ESP_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "brevo": ("BREVO_API_KEY",),
    "mailersend": ("MAILERSEND_API_TOKEN",),
    "mailgun": ("MAILGUN_API_KEY",),
    "mailjet": ("MAILJET_API_KEY", "MAILJET_SECRET_KEY"),
    "mailtrap": ("MAILTRAP_API_TOKEN",),
    "mandrill": ("MANDRILL_API_KEY",),
    "postal": ("POSTAL_API_KEY", "POSTAL_API_URL"),
    "postmark": ("POSTMARK_SERVER_TOKEN",),
    "resend": ("RESEND_API_KEY",),
    "scaleway": ("SCALEWAY_SECRET_KEY", "SCALEWAY_PROJECT_ID"),
    "sendgrid": ("SENDGRID_API_KEY",),
    "sendinblue": ("SENDINBLUE_API_KEY",),
    "sparkpost": ("SPARKPOST_API_KEY",),
    "unisender_go": ("UNISENDER_GO_API_KEY",),
    # Amazon SES signs with boto3's credentials (AWS_* variables or the instance's role).
    "amazon_ses": (),
}


def esp_of(email_backend: str) -> str | None:
    """`anymail.backends.postmark.EmailBackend` -> `postmark`; None for other backends."""
    parts = email_backend.split(".")
    if len(parts) == 4 and parts[:2] == ["anymail", "backends"]:
        return parts[2] if parts[2] not in {"console", "test"} else None
    return None


def _email_problems(config: Mapping[str, Any]) -> list[str]:
    backend = config["EMAIL_BACKEND"]
    if backend.startswith(NON_DELIVERING_BACKENDS):
        return [
            f"EMAIL_BACKEND: {backend} delivers no email; set an ESP's backend "
            "(e.g. anymail.backends.postmark.EmailBackend) or the SMTP one"
        ]
    if backend == SMTP_BACKEND:
        return [] if config["EMAIL_HOST"] else ["EMAIL_HOST: not set (the SMTP EMAIL_BACKEND)"]
    esp = esp_of(backend)
    if esp is None:
        return []  # a backend of the operator's own: it checks its own settings
    anymail = config["ANYMAIL"]
    needed = ESP_CREDENTIALS.get(esp)
    if needed is None:  # an ESP added to anymail after this list: at least one credential
        if any(key.startswith(f"{esp.upper()}_") for key in anymail):
            return []
        return [f"ANYMAIL_{esp.upper()}_*: no credentials for EMAIL_BACKEND={backend}"]
    return [
        f"ANYMAIL_{key}: not set (EMAIL_BACKEND={backend} cannot send without it)"
        for key in needed
        if not anymail.get(key)
    ]


# What Django's `check --deploy` asks of a key (security.W009): a key short or simple enough to
# guess lets anyone sign an unsubscribe link, a password reset token or a device cookie.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
# The password half of ANYMAIL_WEBHOOK_SECRET: the webhooks' basic auth is all that stands
# between the internet and a forged inbound email or bounce.
WEBHOOK_PASSWORD_MIN_LENGTH = 16


def _secret_key_weak(key: str) -> bool:
    return (
        key == DEV_SECRET_KEY
        or key.startswith("django-insecure")
        or len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    )


def _secret_key_problems(config: Mapping[str, Any]) -> list[str]:
    key = config["SECRET_KEY"]
    if key in {"", DEV_SECRET_KEY}:
        return ["SECRET_KEY: not set (a long random value of your own)"]
    strong = (
        f"at least {SECRET_KEY_MIN_LENGTH} characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} of "
        "them different, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
    problems = []
    if _secret_key_weak(key):
        problems.append(f"SECRET_KEY: too short or too simple to be secret ({strong})")
    # An old key still verifies signatures: a weak one is as bad as a weak SECRET_KEY.
    if any(_secret_key_weak(old) for old in config.get("SECRET_KEY_FALLBACKS") or []):
        problems.append(
            f"SECRET_KEY_FALLBACKS: a key is too short or too simple to be secret ({strong})"
        )
    return problems


def _webhook_secret_problems(config: Mapping[str, Any]) -> list[str]:
    secret = config["ANYMAIL"].get("WEBHOOK_SECRET", "")
    if ":" not in secret:
        return ["ANYMAIL_WEBHOOK_SECRET: not set as user:password (the ESP's webhooks refuse all)"]
    user, _colon, password = secret.partition(":")
    if not user or len(password) < WEBHOOK_PASSWORD_MIN_LENGTH:
        return [
            "ANYMAIL_WEBHOOK_SECRET: needs a user and a password of at least "
            f"{WEBHOOK_PASSWORD_MIN_LENGTH} characters (anyone who guesses them can post "
            "inbound mail and bounces)"
        ]
    return []


def _allowed_hosts_problems(config: Mapping[str, Any], *, site_url_https: bool) -> list[str]:
    allowed = config["ALLOWED_HOSTS"]
    if "*" in allowed:
        return ["ALLOWED_HOSTS: * lets any Host header in; name the help desk's own host(s)"]
    host = urlsplit(config["SITE_URL"]).hostname or ""
    if site_url_https and not any(
        h == host or (h.startswith(".") and host.endswith(h)) for h in allowed
    ):
        return [f"ALLOWED_HOSTS: does not include SITE_URL's host {host}"]
    return []


def deploy_problems(config: Mapping[str, Any]) -> list[str]:
    """Each setting a production deployment lacks, as `VARIABLE: what is wrong`."""
    problems = _secret_key_problems(config)
    engine = config["DATABASES"]["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        problems.append(
            f"DATABASE_URL: must name a PostgreSQL database (postgres://…), not {engine}"
        )
    if not config["REDIS_URL"]:
        problems.append("REDIS_URL: not set (the Celery broker; the cache too unless CACHE_URL)")
    problems += _email_problems(config)
    if not config["OPENSRS_URL"].startswith("https://"):
        problems.append(
            f"OPENSRS_URL: must be the reseller API's https address, not {config['OPENSRS_URL']}"
        )
    if config["OPENSRS_USERNAME"] in {"", DEV_OPENSRS_USERNAME}:
        problems.append("OPENSRS_USERNAME: not set (your reseller username)")
    if config["OPENSRS_KEY"] in {"", DEV_OPENSRS_KEY}:
        problems.append("OPENSRS_KEY: not set (your reseller API key)")
    site_url = config["SITE_URL"]
    site_url_https = site_url.startswith("https://")
    if not site_url_https:
        problems.append(f"SITE_URL: must be https:// (links in emails), not {site_url}")
    problems += _allowed_hosts_problems(config, site_url_https=site_url_https)
    problems += _webhook_secret_problems(config)
    return problems


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def debug_serving_problem(*, debug: bool, site_url: str) -> str:
    """Why a web process must not serve with these settings, or "" when it may.

    DEBUG=1 answers an error with Django's technical page: the stack, the request and the
    settings (with the passwords in REDIS_URL, CACHE_URL and the broker's URL, which it does
    not know to hide). It is for a developer's own machine: a SITE_URL elsewhere means the
    pages are served to the people the emails go to. `manage.py` (`check --deploy` against a
    candidate configuration) still runs; only the WSGI and ASGI applications refuse.
    """
    host = urlsplit(site_url).hostname or ""
    if debug and not _loopback(host):
        return (
            f"DEBUG=1 shows stack traces and settings to every visitor, and SITE_URL "
            f"({site_url}) is not this machine: set DEBUG=0 to serve anyone else"
        )
    return ""
