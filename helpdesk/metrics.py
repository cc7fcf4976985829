"""Prometheus metrics at /metrics, for a bearer token (METRICS_TOKEN) or METRICS_ALLOWED_IPS.

Counted in the process: HTTP requests and OpenSRS calls. Read from the database when scraped
(so the same from every process): tickets created by kind, the outbox's backlog, and when each
periodic task last ran. With several processes on a host, PROMETHEUS_MULTIPROC_DIR makes the
in-process counts of all of them (web and workers) add up (prometheus_client's multiprocess
mode).
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from helpdesk.observability import request_id_from, request_id_var
from helpdesk.ratelimit import client_ip_known, ip_in

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "helpdesk_http_requests", "HTTP requests answered", ["method", "area", "status"]
)
HTTP_SECONDS = Histogram(
    "helpdesk_http_request_duration_seconds", "Time to answer an HTTP request", ["area"]
)
OPENSRS_CALLS = Counter(
    "helpdesk_opensrs_calls", "OpenSRS API calls (each attempt) by outcome", ["action", "outcome"]
)
OPENSRS_SECONDS = Histogram(
    "helpdesk_opensrs_call_duration_seconds",
    "Time an OpenSRS API call took",
    ["action"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
# The first path segment, from a fixed list (no label per URL).
AREAS = {"api", "staff", "admin", "anymail", "accounts", "my", "requests", "verify", "static"}


def opensrs_call_observed(*, action: str, outcome: str, seconds: float) -> None:
    OPENSRS_CALLS.labels(action=action, outcome=outcome).inc()
    OPENSRS_SECONDS.labels(action=action).observe(seconds)


def _area(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in AREAS else "other"


class RequestMetricsMiddleware:
    """Request id (X-Request-ID in and out, on every log line) and the request metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            area = _area(request.path_info)
            HTTP_REQUESTS.labels(
                method=request.method if request.method in {"GET", "POST", "HEAD"} else "other",
                area=area,
                status=str(response.status_code),
            ).inc()
            HTTP_SECONDS.labels(area=area).observe(time.perf_counter() - started)
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_id_var.reset(token)


class DatabaseCollector:
    """Metrics read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._read())
        except DatabaseError:
            logger.warning("metrics: the database could not be read", exc_info=True)
            metrics = []
        yield GaugeMetricFamily(
            "helpdesk_metrics_database_up",
            "1 when the metrics below could be read from the database",
            value=1 if metrics else 0,
        )
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        from helpdesk.models import PeriodicRun
        from tickets.selectors.outbox import outbox_counts, outbox_oldest_pending_at
        from tickets.selectors.tickets import ticket_counts_by_kind

        created = CounterMetricFamily(
            "helpdesk_tickets_created", "Tickets created, by kind", labels=["kind"]
        )
        for kind, count in sorted(ticket_counts_by_kind().items()):
            created.add_metric([kind], count)
        yield created
        outbox = GaugeMetricFamily(
            "helpdesk_outbox_notifications", "Notifications by outbox status", labels=["status"]
        )
        for status, count in sorted(outbox_counts().items()):
            outbox.add_metric([status], count)
        yield outbox
        oldest = outbox_oldest_pending_at()
        yield GaugeMetricFamily(
            "helpdesk_outbox_oldest_pending_age_seconds",
            "Age of the oldest notification not yet sent (0 when none)",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0,
        )
        last_run = GaugeMetricFamily(
            "helpdesk_periodic_task_last_run_timestamp_seconds",
            "When each periodic task (the sweeps) last finished, Unix time",
            labels=["task"],
        )
        for run in PeriodicRun.objects.all():
            last_run.add_metric([run.task], run.ran_at.timestamp())
        yield last_run


def metrics_text() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        in_process = generate_latest(registry)
    else:
        in_process = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return in_process + generate_latest(database)


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    allowed: list[str] = settings.METRICS_ALLOWED_IPS
    address = client_ip_known(request)
    return bool(allowed) and address is not None and ip_in(address, allowed, loopback=False)


def metrics_view(request: HttpRequest, *args: Any) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "metrics need Authorization: Bearer <METRICS_TOKEN> or an address in "
            "METRICS_ALLOWED_IPS\n",
            status=403,
            content_type="text/plain",
        )
    response = HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
