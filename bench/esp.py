"""A bench-only email backend: logs each send's Message-ID to a file; optionally flaky.

Every process appends one line per send to $BENCH_ESP_LOG.sent (and per injected failure to
$BENCH_ESP_LOG.failed), so duplicates are countable across worker processes and restarts.
BENCH_ESP_FAIL_RATE=0.3 fails 30 % of sends with a transient AnymailAPIError.
"""

from __future__ import annotations

import os
import random

from anymail.backends.base import AnymailBaseBackend
from anymail.backends.test import TestPayload
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus


def _append(path: str, line: str) -> None:
    # One write() on an O_APPEND file: lines from concurrent processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class EmailBackend(AnymailBaseBackend):
    esp_name = "Bench"

    def build_message_payload(self, message, defaults):
        return TestPayload(backend=self, message=message, defaults=defaults)

    def post_to_esp(self, payload, message):
        log = os.environ.get("BENCH_ESP_LOG", "")
        message_id = str(message.extra_headers.get("Message-ID", ""))
        fail_rate = float(os.environ.get("BENCH_ESP_FAIL_RATE", "0") or 0)
        if fail_rate and random.random() < fail_rate:
            if log:
                _append(log + ".failed", message_id)
            raise AnymailAPIError("bench ESP: injected transient failure")
        if log:
            _append(log + ".sent", message_id)
        status = AnymailRecipientStatus(message_id=message_id, status="sent")
        return {"recipient_status": dict.fromkeys(payload.recipient_emails, status)}

    def parse_recipient_status(self, response, payload, message):
        return response["recipient_status"]
