"""The real URLs plus the intake benchmark's baselines.

`/bench/bare/` is the bare JSON view of the budget. The two floors show what the cheapest
durable intake would cost in this stack: `/bench/insert/` adds one row written by the ORM in a
transaction, `/bench/insert-publish/` also queues one Celery task after the commit.
"""

import secrets
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from tickets.tasks import notification_send


@csrf_exempt
def bare_json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True}, status=202 if request.method == "POST" else 200)


def _insert_row() -> str:
    key = secrets.token_hex(16)
    with transaction.atomic():
        Session.objects.create(
            # expired at once: the intake bench ends with `manage.py clearsessions`
            session_key=key,
            session_data="",
            expire_date=timezone.now() - timedelta(seconds=1),
        )
    return key


@csrf_exempt
def insert_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": _insert_row()}, status=202)


@csrf_exempt
def insert_publish_view(request: HttpRequest) -> JsonResponse:
    key = _insert_row()
    # A task for no row: the worker is not running during the intake bench.
    notification_send.apply_async(kwargs={"notification_id": 0}, retry=False)
    return JsonResponse({"ok": key}, status=202)


urlpatterns = [
    path("bench/bare/", bare_json_view),
    path("bench/insert/", insert_view),
    path("bench/insert-publish/", insert_publish_view),
    path("", include("helpdesk.urls")),
]
