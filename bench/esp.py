"""A bench-only email backend: logs each accepted email to a file; optionally flaky.

Every process appends one JSON line per accepted email to $BENCH_ESP_LOG.sent (Message-ID,
recipient and the message's metadata, as an ESP keeps them for its webhooks), and one line per
injected failure to $BENCH_ESP_LOG.failed, so duplicates are countable across worker processes
and restarts. BENCH_ESP_FAIL_RATE=0.3 fails 30 % of sends with a transient AnymailAPIError.
BENCH_ESP_ANSWER_DELAY_MS=20 answers that long after accepting, as a real ESP's API answer
travels back after the email is in its queue.
"""

from __future__ import annotations

import json
import os
import random
import time

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
            # One line per accepted email, written before the answer: what the ESP has.
            accepted = {
                "message_id": message_id,
                "to": payload.recipient_emails[0] if payload.recipient_emails else "",
                "metadata": message.metadata or {},
            }
            _append(log + ".sent", json.dumps(accepted))
        delay_ms = float(os.environ.get("BENCH_ESP_ANSWER_DELAY_MS", "0") or 0)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        status = AnymailRecipientStatus(message_id=message_id, status="sent")
        return {"recipient_status": dict.fromkeys(payload.recipient_emails, status)}

    def parse_recipient_status(self, response, payload, message):
        return response["recipient_status"]
