"""Settings for the help desk, read from the environment (CONTRACT.md and .env.example).

One module on purpose (STYLE.md §8: no per-environment split), so it is longer than the others.
"""

import ipaddress
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

from helpdesk.deploy import (
    DEV_OPENSRS_KEY,
    DEV_OPENSRS_URL,
    DEV_OPENSRS_USERNAME,
    DEV_SECRET_KEY,
    deploy_problems,
    esp_of,
)
from helpdesk.observability import logging_config, sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean strictly: a typo must not silently switch a feature."""
    raw = env.str(name, default="1" if default else "0").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


# Under pytest the development defaults apply (no secrets needed), as with DEBUG=1. Tests never
# read .env, so they run alike in a fresh clone and in a checkout where `make run` wrote one.
TESTING = env_bool("HELPDESK_TESTING", "pytest" in sys.modules)
# Variables already in the environment win over the file's.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and not TESTING and Path(ENV_FILE).exists():
    env.read_env(ENV_FILE)

DEBUG = env_bool("DEBUG", False)

# Files the embedded defaults keep: the SQLite database, the broker's messages, beat's schedule.
VAR_DIR = (BASE_DIR / env.str("VAR_DIR", default="var")).resolve()  # relative to the checkout

# The test suite runs in several processes at once (pytest-xdist names them gw0, gw1, ...): each
# keeps its files under a folder of its own and its Redis databases to itself (below), so that
# one's embedded broker, cache.clear() or broker purge never reaches another's. pytest-django
# gives each its own test database.
TEST_WORKER = env.str("PYTEST_XDIST_WORKER", default="") if TESTING else ""
if TEST_WORKER:
    VAR_DIR /= TEST_WORKER

SECRET_KEY = env.str("SECRET_KEY", default="") or DEV_SECRET_KEY
# Old keys, newest first, still accepted for signatures (unsubscribe links, password reset
# links, sessions) after SECRET_KEY is rotated; new signatures use SECRET_KEY only.
SECRET_KEY_FALLBACKS = [key for key in env.list("SECRET_KEY_FALLBACKS", default=[]) if key]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
SITE_URL: str = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
COMPANY_NAME = env.str("COMPANY_NAME", default="Exabytes")
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@exabytes.example")
BILLING_EMAIL = env.str("BILLING_EMAIL", default="billing@exabytes.example")
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default=f"{COMPANY_NAME} Help Desk <{SUPPORT_EMAIL}>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

INSTALLED_APPS = [
    # django.contrib.admin, whose site lets in no customer's login (helpdesk/admin_site.py).
    "helpdesk.admin_site.StaffAdminConfig",
    # Before django.contrib.auth: its createsuperuser (held to the login address rule) is the one
    # manage.py runs (the first app naming a command wins).
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "helpdesk",
    "domains",
    "tickets",
]

MIDDLEWARE = [
    # First: liveness answers before host checks, redirects and sessions (no dependencies).
    "helpdesk.middleware.HealthzMiddleware",
    "helpdesk.metrics.RequestMetricsMiddleware",
    # Before SecurityMiddleware: X-Forwarded-Proto only from a trusted proxy.
    "helpdesk.middleware.ForwardedProtoMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that may answer an API call (a 413, a refusal, the view itself).
    "helpdesk.api.CallerOnlyMiddleware",
    "helpdesk.middleware.RequestBodyLimitMiddleware",
    "helpdesk.errors.NulPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginDeviceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "helpdesk.middleware.SecurityHeadersMiddleware",
    "helpdesk.errors.RefusalMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "helpdesk.context_processors.site",
                "helpdesk.context_processors.login_kind",
            ],
        },
    },
]

# Database: SQLite under var/ by default, PostgreSQL in production and CI.
DATABASE_URL = env.str("DATABASE_URL", default="sqlite:///var/db.sqlite3")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _name = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["NAME"] = str(_name if _name.is_absolute() else BASE_DIR / _name)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A file, not memory, so a worker process started by the tests sees the same data; its
    # folder made here, as with Redis as the broker nothing else makes a test process's own.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    if TESTING:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_database_other(url: str) -> str:
    """The same Redis server with the database counted from the top: /0 -> /15, /2 -> /13."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    if not 0 <= number <= 15:
        raise ImproperlyConfigured(f"REDIS_URL uses database {number}: set CACHE_URL as well")
    return urlunsplit(parts._replace(path=f"/{15 - number}"))


def _redis_database_moved(url: str, by: int) -> str:
    """The same Redis server with the database number `by` higher: /10 moved by -2 is /8."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + by
    if not 0 <= number <= 15:
        raise ImproperlyConfigured(f"Redis has no database {number} for test {TEST_WORKER}")
    return urlunsplit(parts._replace(path=f"/{number}"))


def _redis_server_database(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.netloc.rpartition("@")[2], int(parts.path.strip("/") or 0))


# Redis: REDIS_URL is the Celery broker, CACHE_URL the cache (rate limits, counts). They are
# never the same database: clearing the cache must not drop queued tasks, and each wants its
# own eviction policy (README, Production). Without either, the embedded defaults.
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_URL = env.str("CACHE_URL", default="")
if REDIS_URL and TEST_WORKER:
    # Test process n: the broker on REDIS_URL's database + 2n, the cache counted from the top as
    # ever (15 - that, or CACHE_URL's - 2n when it is set). REDIS_URL=.../10 gives gw0 10 and 5,
    # gw1 12 and 3: the brokers count up and the caches down in even steps, so none meet.
    _step = 2 * int(TEST_WORKER.removeprefix("gw"))
    REDIS_URL, CACHE_URL = (
        _redis_database_moved(REDIS_URL, _step),
        _redis_database_moved(CACHE_URL, -_step) if CACHE_URL else "",
    )
CACHE_URL = CACHE_URL or (_redis_database_other(REDIS_URL) if REDIS_URL else "")
if REDIS_URL and _redis_server_database(CACHE_URL) == _redis_server_database(REDIS_URL):
    raise ImproperlyConfigured("CACHE_URL must not be REDIS_URL's database (the broker's)")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "helpdesk.redis_cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="hd"),
            # A hung Redis must not hang requests: fail fast and let callers degrade.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT = "helpdesk.embedded_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The worker looks for new files this often; a warm shutdown waits for one more look.
        "polling_interval": 0.2,
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless
# this is set (a new PostgreSQL connection per email, ~5 ms). With it, connections live by
# CONN_MAX_AGE and the health checks of helpdesk.celery's task_prerun handler instead.
CELERY_DB_REUSE_MAX = 10_000
# A publish that cannot reach the broker must fail fast: the outbox sweep re-queues the row.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
# OpenSRS calls wait on a remote server for up to minutes: they get their own queue (and, in
# the Procfile, their own worker) so a stalled OpenSRS never holds up notifications. A worker
# started without -Q consumes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("opensrs"))
CELERY_TASK_ROUTES = {
    "tickets.password_resend_process": {"queue": "opensrs"},
    "domains.contacts_refresh": {"queue": "opensrs"},
    "tickets.registration_change_process": {"queue": "opensrs"},
}
CELERY_BEAT_SCHEDULE = {
    # https://crontab.guru/#*_*_*_*_* : every minute
    "notifications-sweep": {
        "task": "tickets.notifications_sweep",
        "schedule": crontab(minute="*"),
    },
    # https://crontab.guru/#*_*_*_*_* : every minute
    "password-resend-sweep": {
        "task": "tickets.password_resend_sweep",
        "schedule": crontab(minute="*"),
    },
    # https://crontab.guru/#*_*_*_*_* : every minute
    "anonymous-requests-sweep": {
        "task": "tickets.anonymous_requests_sweep",
        "schedule": crontab(minute="*"),
    },
    # https://crontab.guru/#*/15_*_*_*_* : every 15 minutes
    "verifications-expire": {
        "task": "tickets.verifications_expire",
        "schedule": crontab(minute="*/15"),
    },
    # https://crontab.guru/#*_*_*_*_* : every minute
    "registration-changes-sweep": {
        "task": "tickets.registration_changes_sweep",
        "schedule": crontab(minute="*"),
    },
    # https://crontab.guru/#*_*_*_*_* : every minute
    "attachments-scan-sweep": {
        "task": "tickets.attachments_scan_sweep",
        "schedule": crontab(minute="*"),
    },
    # https://crontab.guru/#30_2_*_*_* : every day at 02:30
    "registration-contacts-refresh": {
        "task": "domains.contacts_refresh",
        "schedule": crontab(minute="30", hour="2"),
    },
    # https://crontab.guru/#30_6_*_*_* : every day at 06:30, after the refresh
    "registration-warnings-sweep": {
        "task": "tickets.registration_warnings_sweep",
        "schedule": crontab(minute="30", hour="6"),
    },
    # https://crontab.guru/#15_3_*_*_* : every day at 03:15, while the desk is quiet
    "ticket-stats-rebuild": {
        "task": "tickets.ticket_stats_rebuild_recent",
        "schedule": crontab(minute="15", hour="3"),
    },
}
# Readiness (/api/v1/health/) says `sweeps: down` when no periodic task finished for this long.
SWEEP_LATE_AFTER = timedelta(minutes=env.int("SWEEP_LATE_AFTER_MINUTES", default=5))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Email: console in development, any Django or anymail backend in production.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="anymail.backends.console.EmailBackend"
    if DEBUG
    else "anymail.backends.test.EmailBackend",
)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
# Django's SMTP backend, when EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
ANYMAIL = {
    "SEND_DEFAULTS": {"tags": []},
    "REQUESTS_TIMEOUT": 15,
}
_webhook_secret = env.str("ANYMAIL_WEBHOOK_SECRET", default="")
if _webhook_secret:
    ANYMAIL["WEBHOOK_SECRET"] = _webhook_secret
for _key, _value in env.ENVIRON.items():
    # ESP credentials: ANYMAIL_POSTMARK_SERVER_TOKEN=... becomes ANYMAIL["POSTMARK_SERVER_TOKEN"].
    if _key.startswith("ANYMAIL_") and _key not in {"ANYMAIL_WEBHOOK_SECRET", "ANYMAIL_ESP"}:
        ANYMAIL[_key.removeprefix("ANYMAIL_")] = _value
# The one ESP whose webhooks (tracking, inbound) are mounted under /anymail/<esp>/.
ANYMAIL_ESP = env.str("ANYMAIL_ESP", default=esp_of(EMAIL_BACKEND) or "postmark")

# OpenSRS reseller API: the fake server started by `make run` by default.
OPENSRS_URL = env.str("OPENSRS_URL", default=DEV_OPENSRS_URL)
OPENSRS_USERNAME = env.str("OPENSRS_USERNAME", default=DEV_OPENSRS_USERNAME)
OPENSRS_KEY = env.str("OPENSRS_KEY", default=DEV_OPENSRS_KEY)
OPENSRS_CONNECT_TIMEOUT = env.float("OPENSRS_CONNECT_TIMEOUT", default=5.0)
OPENSRS_READ_TIMEOUT = env.float("OPENSRS_READ_TIMEOUT", default=30.0)
# Idempotent calls (GET DOMAIN) are tried 1 + OPENSRS_READ_RETRIES times; SEND_PASSWORD once.
OPENSRS_READ_RETRIES = env.int("OPENSRS_READ_RETRIES", default=3)
OPENSRS_RETRY_BACKOFF = env.float("OPENSRS_RETRY_BACKOFF", default=0.5)
# A resend task's time limit must outlast its slowest legal run, or the soft limit would cut
# SEND_PASSWORD off mid-call and turn a sent reset into an "outcome unknown" ticket.
_opensrs_call_seconds = OPENSRS_CONNECT_TIMEOUT + OPENSRS_READ_TIMEOUT
_opensrs_backoff_seconds = sum(
    2 * OPENSRS_RETRY_BACKOFF * 2**attempt for attempt in range(OPENSRS_READ_RETRIES)
)
PASSWORD_RESEND_TASK_SOFT_TIME_LIMIT = int(
    (OPENSRS_READ_RETRIES + 2) * _opensrs_call_seconds + _opensrs_backoff_seconds + 30
)
# Registration contacts (GET_DOMAINS_CONTACTS, MODIFY contact_info) share the API with resends.
# Never more than this many OpenSRS calls in any minute, across every worker (0: no limit); a
# call waits up to OPENSRS_THROTTLE_MAX_WAIT seconds for its slot, then is retried later.
OPENSRS_MAX_CALLS_PER_MINUTE = env.int("OPENSRS_MAX_CALLS_PER_MINUTE", default=60)
OPENSRS_THROTTLE_MAX_WAIT = env.float("OPENSRS_THROTTLE_MAX_WAIT", default=60.0)
# Domains per GET_DOMAINS_CONTACTS call (OpenSRS takes at most 100) and calls per refresh task.
OPENSRS_CONTACTS_BATCH = env.int("OPENSRS_CONTACTS_BATCH", default=100)
OPENSRS_CONTACTS_BATCHES_PER_TASK = env.int("OPENSRS_CONTACTS_BATCHES_PER_TASK", default=10)
# Tries of a registration change while OpenSRS is unreachable before staff take it over.
REGISTRATION_CHANGE_MAX_TRIES = env.int("REGISTRATION_CHANGE_MAX_TRIES", default=6)
# A customer is told about a dead or out-of-date registration address once, then once more
# after this many days if it is still so; never more.
REGISTRATION_WARNING_REPEAT_DAYS = env.int("REGISTRATION_WARNING_REPEAT_DAYS", default=90)
_opensrs_slot_seconds = _opensrs_call_seconds + OPENSRS_THROTTLE_MAX_WAIT
# A single-domain OpenSRS task (resend, registration change) may wait for a few call slots.
OPENSRS_TASK_SOFT_TIME_LIMIT = PASSWORD_RESEND_TASK_SOFT_TIME_LIMIT + int(
    OPENSRS_THROTTLE_MAX_WAIT * 3
)
CONTACTS_REFRESH_TASK_SOFT_TIME_LIMIT = int(
    OPENSRS_CONTACTS_BATCHES_PER_TASK
    * ((OPENSRS_READ_RETRIES + 1) * _opensrs_slot_seconds + _opensrs_backoff_seconds)
    + 30
)
CELERY_TASK_ANNOTATIONS = {
    "tickets.password_resend_process": {
        "soft_time_limit": OPENSRS_TASK_SOFT_TIME_LIMIT,
        "time_limit": OPENSRS_TASK_SOFT_TIME_LIMIT + 30,
    },
    "domains.contacts_refresh": {
        "soft_time_limit": CONTACTS_REFRESH_TASK_SOFT_TIME_LIMIT,
        "time_limit": CONTACTS_REFRESH_TASK_SOFT_TIME_LIMIT + 30,
    },
    "tickets.registration_change_process": {
        "soft_time_limit": OPENSRS_TASK_SOFT_TIME_LIMIT,
        "time_limit": OPENSRS_TASK_SOFT_TIME_LIMIT + 30,
    },
}
OPENSRS_MANAGE_URL = env.str("OPENSRS_MANAGE_URL", default="https://manage.opensrs.org")
OPENSRS_DIRECT_REQUEST_URL = env.str(
    "OPENSRS_DIRECT_REQUEST_URL",
    default="https://opensrs.com/contact/compliance/",
)

# Help-desk policy.
VERIFICATION_TTL = timedelta(hours=env.int("VERIFICATION_TTL_HOURS", default=24))
VERIFICATION_MAX_ATTEMPTS = env.int("VERIFICATION_MAX_ATTEMPTS", default=5)
# How long the "this wasn't me" link in the notice to a changed email's old address works.
FREEZE_LINK_TTL = timedelta(days=env.int("FREEZE_LINK_TTL_DAYS", default=14))
# How long the link to a ticket's status page (acknowledgements, /track/) works.
STATUS_LINK_TTL = timedelta(days=env.int("STATUS_LINK_TTL_DAYS", default=30))
MODIFY_AUTO_APPLY_LOW_RISK = env_bool("MODIFY_AUTO_APPLY_LOW_RISK", True)
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=6)
NOTIFICATION_SWEEP_AFTER = timedelta(
    seconds=env.int("NOTIFICATION_SWEEP_AFTER_SECONDS", default=60)
)
NOTIFICATION_SENDING_STALE_AFTER = timedelta(minutes=10)
# SLA: hours to first resolution by priority; a kind may tighten it.
SLA_HOURS = {"urgent": 4, "high": 8, "normal": 24, "low": 72}
SLA_HOURS_BY_KIND = {"resend_password": 4, "opt_out": 24}
# Inbound mail carries attachments (Postmark takes messages up to 35 MB, base64 inside JSON),
# far above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which stays for every other URL; larger is 413.
INBOUND_MAX_BODY_BYTES = 50 * 1024 * 1024
# Inbound mail acts for its sender (an opt-out, reopening a ticket, a ticket on the customer's
# record) only when the receiving server authenticated its From address (SPF, DKIM or DMARC,
# tickets.services.inbound_auth). Its verdicts count only under these authserv-ids (the first word
# of Authentication-Results, the receiver of Received-SPF); Postmark's inbound servers name
# themselves inbound.postmarkapp.com. Another ESP: the host its inbound headers name.
INBOUND_AUTHSERV_IDS = env.list("INBOUND_AUTHSERV_IDS", default=["inbound.postmarkapp.com"])
# Off only for an ESP that passes on no verdicts: then every From address is believed.
INBOUND_REQUIRE_AUTHENTICATION = env_bool("INBOUND_REQUIRE_AUTHENTICATION", True)
# Files customers and staff attach on the portal and the staff ticket page (and inbound mail
# keeps): at most ATTACHMENTS_PER_MESSAGE of ATTACHMENT_MAX_BYTES each, checked in
# tickets.services.attachments and said on every page that takes them or refuses a body.
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENTS_PER_MESSAGE = 5
# The forms that take them accept a multipart body up to this size (the files and 2 MB for the
# rest of the form); everything else keeps the 2.5 MB.
ATTACHMENT_UPLOAD_MAX_BODY_BYTES = ATTACHMENTS_PER_MESSAGE * ATTACHMENT_MAX_BYTES + 2 * 1024 * 1024
# A staff reply's files go with its email up to this many bytes in all (Postmark takes messages
# of 10 MB, base64 included); the rest are named in the email and wait on the ticket's page.
EMAIL_ATTACHMENTS_MAX_BYTES = env.int("EMAIL_ATTACHMENTS_MAX_BYTES", default=7 * 1024 * 1024)
# Virus scan of attachments in the worker: ClamAV's clamd on this unix socket (INSTREAM). Unset,
# nothing is scanned: attachments are marked clean by the worker without a check.
CLAMD_SOCKET = env.str("CLAMD_SOCKET", default="")
CLAMD_TIMEOUT_SECONDS = env.float("CLAMD_TIMEOUT_SECONDS", default=30.0)
# Another check can be plugged in: the dotted path of a callable returning a
# tickets.scanning.Scanner. Empty: clamd when CLAMD_SOCKET is set, otherwise none.
ATTACHMENT_SCANNER = env.str("ATTACHMENT_SCANNER", default="")
# Rate limits: (requests, seconds); each can be set as RATE_LIMIT_<NAME>=count/seconds.
# Per client and global ones answer 429 with Retry-After; per target ones (a domain, an email
# address) never refuse: past them a request is coalesced with the last one for that target.
_RATE_LIMIT_DEFAULTS = {
    # Anonymous requests (the portal forms and the API's requests), per client address and in all.
    "request_per_client": (20, 3600),
    "request_global": (600, 60),
    # Targets, coalesced: at most one OpenSRS reset per domain in 15 minutes and four a day;
    # links to one email on record for change and opt-out requests.
    "resend_per_domain": (1, 900),
    "resend_per_domain_day": (4, 86400),
    "request_per_email": (5, 3600),
    "verify_per_client": (30, 3600),
    # Failed logins (portal, admin, API token), counted before the password is checked. Per
    # username from one client (a success clears it): a guesser locks out only their own client,
    # never the owner at theirs. Per username from every client together, far higher, against
    # guessing spread over many addresses (only attempts the two limits before let through
    # count; a success takes back its attempt). Per client, whatever the usernames. An attempt
    # from a browser the login once signed in from (its device cookie, LOGIN_DEVICE_COOKIE_DAYS)
    # is kept out of the every-client count and limited per device instead, so guessers spread
    # over many addresses cannot lock the owner out.
    "login_failures_per_username": (10, 900),
    "login_failures_per_username_all_clients": (100, 900),
    "login_failures_per_client": (50, 900),
    "login_failures_per_device": (10, 900),
    # A signed-in customer's replies (portal and API) and changes of their mailing preferences
    # and language, per customer: each is audited and mails staff or the customer.
    "reply_per_customer": (60, 3600),
    "preferences_per_customer": (30, 3600),
    # /track/: asking for a status link, per client (429); per ticket, and per address mailed
    # over all its tickets (coalesced: no mail), so nobody makes the help desk mail a stranger
    # a link for each request they once typed that address into.
    "track_per_client": (10, 3600),
    "track_per_ticket": (3, 3600),
    "track_per_address": (5, 3600),
    # The REST API as a whole, per logged-in user and per anonymous client address.
    "api_per_user": (600, 60),
    "api_per_client": (120, 60),
    # Inbound email: new tickets per sender address and per sender domain.
    "inbound_per_sender": (10, 3600),
    "inbound_per_sender_domain": (300, 3600),
    # Inbound replies our mail server did not authenticate (anyone can forge them), per sender
    # address on one ticket, and per ticket from all its senders (counting only what the first
    # let through: a forger spends one address's share on one ticket, never the requester's
    # other address's or their other tickets'); authenticated replies are never limited.
    "inbound_reply_unverified_per_sender": (10, 3600),
    "inbound_reply_unverified_per_ticket": (20, 3600),
    # "We received your request" acknowledgements (email and web form): per address; per domain
    # from one client (mail with an authenticated sender is a client of its own, all other mail
    # counts as one); per domain from every client together, far
    # higher (only what the two before let through counts), so one person typing addresses of a
    # large free-mail domain does not leave everyone else there without one.
    "ack_per_address": (3, 3600),
    "ack_per_domain": (50, 3600),
    "ack_per_domain_all_clients": (1000, 3600),
    # Links to confirm a new email address, per address whoever asks (coalesced: the request is
    # taken, no more mail), so signed-in customers cannot make the help desk mail a stranger.
    "new_email_link_per_address": (3, 86400),
}


def rate_limit_from_env(name: str, default: tuple[int, int]) -> tuple[int, int]:
    variable = f"RATE_LIMIT_{name.upper()}"
    raw = env.str(variable, default="").strip()
    if not raw:
        return default
    match = re.fullmatch(r"([0-9]{1,9})\s*/\s*([0-9]{1,9})", raw)
    if match is None or int(match[2]) == 0:
        raise ImproperlyConfigured(f"{variable} must be count/seconds, e.g. 20/3600, not {raw!r}")
    return int(match[1]), int(match[2])


RATE_LIMITS = {
    name: rate_limit_from_env(name, default) for name, default in _RATE_LIMIT_DEFAULTS.items()
}


# Per-client limits count an IPv6 client by its network of this many leading bits, as a
# subscriber is given a whole /64 (some providers give a /56 or a /48: set 56 or 48 to count
# each of those as one client). IPv4 clients are counted per address.
def ipv6_client_prefix_length_from_env() -> int:
    length = env.int("IPV6_CLIENT_PREFIX_LENGTH", default=64)
    if not 1 <= length <= 128:
        raise ImproperlyConfigured(f"IPV6_CLIENT_PREFIX_LENGTH must be 1 to 128, not {length}")
    return length


IPV6_CLIENT_PREFIX_LENGTH = ipv6_client_prefix_length_from_env()
# The staff queue's per-view counts are read from the cache when younger than this.
STAFF_QUEUE_COUNTS_CACHE_SECONDS = env.int("STAFF_QUEUE_COUNTS_CACHE_SECONDS", default=10)


def networks_from_env(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of addresses or networks (10.0.0.5, 10.0.8.0/24, ::1).

    Every allow-list of addresses is read here, so a typo stops the start instead of allowing
    nobody (a name, which matches no address) or far more than meant: a network written with
    an address's bits past its prefix (10.0.8.0/2 for /24, 203.0.113.9/0) is refused too.
    """
    networks = [network.strip() for network in env.list(name, default=default) if network.strip()]
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list addresses or networks, e.g. 10.0.0.5,10.0.8.0/24, "
                f"not {network!r}"
            ) from None
        try:
            ipaddress.ip_network(network)
        except ValueError:
            meant = ipaddress.ip_network(network, strict=False)
            raise ImproperlyConfigured(
                f"{name}: {network!r} has address bits set past its prefix, so it would mean "
                f"{meant} ({meant.num_addresses} addresses); write the network as such, or "
                f"the address alone"
            ) from None
    return networks


# Proxies in front of the app (a TLS terminator, a load balancer): how many append to
# X-Forwarded-For, and their own addresses or networks. The header is believed only from a
# request whose REMOTE_ADDR is one of them, one hop further back for each trusted proxy
# (helpdesk.ratelimit.client_ip); a request that reached the app directly is its own client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
TRUSTED_PROXIES = networks_from_env("TRUSTED_PROXIES", ["127.0.0.1", "::1"])
# Monitoring addresses or networks whose readiness probes are never rate-limited (loopback
# never is either), e.g. HEALTH_UNTHROTTLED_IPS=10.0.0.5,10.0.8.0/24; matched against a client
# address that is known: a request passed on by an untrusted proxy is never exempt.
HEALTH_UNTHROTTLED_IPS = networks_from_env("HEALTH_UNTHROTTLED_IPS", [])

# Authentication.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# One query for a login's permissions, not two (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.OneQueryModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"
PASSWORD_RESET_TIMEOUT = 3600

# Internationalisation: English and Bahasa Melayu.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ms", _("Bahasa Melayu"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Kuala_Lumpur")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and not TESTING
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 8
# A successful login leaves a signed cookie naming the login in that browser (Secure as the
# session cookie is); it keeps the login's attempts from there clear of the every-client limit
# of failed logins (accounts.login_devices), for this many days after the last login.
LOGIN_DEVICE_COOKIE_NAME = "login_device"
LOGIN_DEVICE_COOKIE_DAYS = env.int("LOGIN_DEVICE_COOKIE_DAYS", default=180)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
USE_X_FORWARDED_HOST = False
if SITE_URL.startswith("https://"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT else None
# Probes and scrapers talk plain http to each server behind the proxy.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^metrics$"]
CSRF_TRUSTED_ORIGINS = [SITE_URL]
CSRF_FAILURE_VIEW = "helpdesk.errors.csrf_failure"

# REST API.
REST_FRAMEWORK = {
    # Token first: an anonymous API call is then a 401 with `WWW-Authenticate: Token`, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["helpdesk.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "helpdesk.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens (django-rest-knox): stored as a SHA-512 digest, named, expiring.
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 - a model name, not a secret
# Knox's migrations create its own token table even when the model is swapped; unused, it would
# still hold a foreign key to auth_user (PostgreSQL then refuses to flush or truncate users).
MIGRATION_MODULES = {"knox": None}
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
API_TOKEN_MAX_TTL_DAYS = 365
API_TOKENS_PER_USER = 20
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": API_TOKENS_PER_USER,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Exabytes Help Desk API",
    "DESCRIPTION": "File and follow help-desk requests; staff work the ticket queue.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": "helpdesk.health.STATUSES",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "TicketKindEnum": "tickets.models.Ticket.Kind",
    },
}

# Logs: text, or one JSON object a line with LOG_FORMAT=json; each line carries the request id
# (X-Request-ID, or the Celery task's id).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# Celery workers use LOGGING too, instead of their own format; what a task prints (the
# development console email backend) is logged at INFO, not as a warning.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
# Idle workers notice a shutdown sooner (the timer thread sleeps at most this long).
CELERY_WORKER_TIMER_PRECISION = 0.2

# Error tracking (optional): nothing that identifies a person is sent (helpdesk.observability).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# Prometheus metrics at /metrics for a bearer token or these addresses/networks (neither set:
# refused to all). With several processes a host, set PROMETHEUS_MULTIPROC_DIR (README).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = networks_from_env("METRICS_ALLOWED_IPS", [])

# A production process (DEBUG=0) refuses to start half-configured; `check --deploy` lists the
# same problems under DEBUG=1 (helpdesk.checks).
if not DEBUG and not TESTING and (_problems := deploy_problems(globals())):
    raise ImproperlyConfigured(
        "DEBUG=0 but the production configuration is incomplete; set these environment "
        "variables (README, Production):\n" + "\n".join(f"  - {p}" for p in _problems)
    )
