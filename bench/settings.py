"""Bench-only settings: the real ones plus a bare view, raised rate limits and short timers."""

from datetime import timedelta

from helpdesk.settings import *  # noqa: F403
from helpdesk.settings import RATE_LIMITS, env

ROOT_URLCONF = "bench.urls"
# Measure throughput, not the limiter: every limit is raised, the windows (and the cache work
# each request does) stay.
RATE_LIMITS = {scope: (10**9, window) for scope, (_limit, window) in RATE_LIMITS.items()}
# Pages are rendered without a collectstatic run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Fault tests hand back rows claimed by a killed worker sooner than the production 10 minutes.
NOTIFICATION_SENDING_STALE_AFTER = timedelta(
    seconds=env.int("BENCH_SENDING_STALE_AFTER_SECONDS", default=600)
)
# Retry backoff base of the notification task (the service reads it; production default 5 s).
NOTIFICATION_BACKOFF_SECONDS = env.float("BENCH_NOTIFICATION_BACKOFF_SECONDS", default=5.0)
# A request's query slower than this (ms) has its plan written to PostgreSQL's own log
# (/var/log/postgresql/ here), so a slow case says why in the run that met it. Plans only, no
# timing of each node: nothing is added to the queries that stay under it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    _explain_ms = env.int("BENCH_EXPLAIN_MS", default=100)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (  # noqa: F405
        f"-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration={_explain_ms}"
    )
