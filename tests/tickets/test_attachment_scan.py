"""The virus scan in the worker: clamd's INSTREAM on a real unix socket, or no check at all."""

import socket
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tests.threads import run_at_once
from tests.tickets.fake_clamd import EICAR, FakeClamd
from tests.tickets.test_attachments import PNG, attach, portal_url, staff_url
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Attachment, Ticket
from tickets.scanning import (
    CLAMD_CHUNK_BYTES,
    ClamdScanner,
    NoScanner,
    ScannerUnavailable,
    ScanVerdict,
    attachment_scanner,
)
from tickets.services import merge as merge_service
from tickets.services.attachments import attachment_scan, attachments_scan_requeue_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(agent):
    # A client of its own: alice_client and staff_client are one client, logged in last.
    client = Client()
    client.force_login(agent)
    return client


@pytest.fixture
def clamd(settings):
    server = FakeClamd()
    settings.CLAMD_SOCKET = server.path
    settings.CLAMD_TIMEOUT_SECONDS = 5
    yield server
    server.close()


# --- the clamd client, against a clamd speaking the protocol on a socket ---


def test_a_clean_stream_is_ok_and_sent_in_length_prefixed_chunks(clamd):
    content = b"a" * (CLAMD_CHUNK_BYTES * 2 + 10)

    verdict = ClamdScanner(clamd.path).scan(content)

    assert verdict.clean and verdict.signature == ""
    assert clamd.commands == [b"zINSTREAM\0"]
    assert clamd.streams == [content]
    assert clamd.chunk_sizes == [CLAMD_CHUNK_BYTES, CLAMD_CHUNK_BYTES, 10]


def test_eicar_is_found_and_named(clamd):
    verdict = ClamdScanner(clamd.path).scan(b"prefix " + EICAR)

    assert not verdict.clean
    assert verdict.signature == "Eicar-Test-Signature"


def test_an_error_reply_is_no_verdict(clamd):
    clamd.reply = "INSTREAM size limit exceeded. ERROR"

    with pytest.raises(ScannerUnavailable, match="size limit exceeded"):
        ClamdScanner(clamd.path).scan(PNG)


def test_a_missing_socket_is_no_verdict(tmp_path):
    with pytest.raises(ScannerUnavailable):
        ClamdScanner(str(tmp_path / "nothing.sock"), timeout=1).scan(PNG)


def test_a_silent_clamd_times_out():
    # a socket that accepts and never answers
    silent = FakeClamd()
    silent.close()  # frees the path; a new listener that never accepts takes it
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.directory.mkdir()
    server.bind(silent.path)
    server.listen(1)
    try:
        with pytest.raises(ScannerUnavailable, match="timed out"):
            ClamdScanner(silent.path, timeout=0.3).scan(PNG)
    finally:
        server.close()
        silent.close()


def test_the_scanner_is_clamd_only_when_its_socket_is_set(settings):
    settings.CLAMD_SOCKET = ""
    assert isinstance(attachment_scanner(), NoScanner)
    settings.CLAMD_SOCKET = "/run/clamav/clamd.ctl"
    scanner = attachment_scanner()
    assert isinstance(scanner, ClamdScanner) and scanner.path == "/run/clamav/clamd.ctl"


# --- the service the worker runs ---


def test_until_scanned_an_attachment_is_listed_but_not_downloadable(
    alice_client, staff_client, alice
):
    attachment = attach(TicketFactory(customer=alice), scan_status="pending")

    assert alice_client.get(portal_url(attachment)).status_code == 404
    assert staff_client.get(staff_url(attachment)).status_code == 404
    page = alice_client.get(f"/my/tickets/{attachment.message.ticket.reference}/").content
    assert b"scan.png" in page and b"Being checked" in page
    assert portal_url(attachment).encode() not in page


def test_a_clean_scan_makes_it_downloadable_and_is_audited(clamd, alice_client, alice):
    attachment = attach(TicketFactory(customer=alice), scan_status="pending")

    assert attachment_scan(attachment_id=attachment.pk) == "clean"

    attachment.refresh_from_db()
    assert attachment.scan_status == "clean" and attachment.scanned_at is not None
    assert clamd.streams == [PNG]
    assert alice_client.get(portal_url(attachment)).content == PNG
    row = ActionLog.objects.get(action="attachment.scanned")
    assert row.ticket == attachment.message.ticket
    assert row.details == {"attachment": attachment.pk, "name": "scan.png", "scanner": "clamd"}


def test_an_infected_file_is_blocked_for_everyone_and_shown_blocked_to_staff(
    clamd, alice_client, staff_client, alice
):
    attachment = attach(
        TicketFactory(customer=alice), filename="notes.txt", content=EICAR, scan_status="pending"
    )

    assert attachment_scan(attachment_id=attachment.pk) == "infected"

    attachment.refresh_from_db()
    assert attachment.scan_status == "infected"
    assert attachment.scan_result == "clamd: Eicar-Test-Signature"
    assert alice_client.get(portal_url(attachment)).status_code == 404
    assert staff_client.get(staff_url(attachment)).status_code == 404
    staff_page = staff_client.get(f"/staff/tickets/{attachment.message.ticket.reference}/")
    text = staff_page.content.decode()
    assert "notes.txt" in text and "Blocked: malware found" in text
    assert "Eicar-Test-Signature" in text
    assert staff_url(attachment) not in text
    row = ActionLog.objects.get(action="attachment.blocked")
    assert row.details["found"] == "Eicar-Test-Signature"


def test_without_a_scanner_the_worker_passes_files_unchecked(settings, alice):
    settings.CLAMD_SOCKET = ""
    attachment = attach(TicketFactory(customer=alice), content=EICAR, scan_status="pending")

    assert attachment_scan(attachment_id=attachment.pk) == "clean"

    assert ActionLog.objects.get(action="attachment.scanned").details["scanner"] == "none"


def test_a_scanner_that_is_down_leaves_it_pending(settings, alice, tmp_path):
    settings.CLAMD_SOCKET = str(tmp_path / "gone.sock")
    attachment = attach(TicketFactory(customer=alice), scan_status="pending")

    with pytest.raises(ScannerUnavailable):
        attachment_scan(attachment_id=attachment.pk)

    attachment.refresh_from_db()
    assert attachment.scan_status == "pending"
    assert not ActionLog.objects.filter(action__startswith="attachment.").exists()


def test_a_second_delivery_of_the_task_scans_nothing(clamd, alice):
    attachment = attach(TicketFactory(customer=alice), scan_status="pending")
    attachment_scan(attachment_id=attachment.pk)

    assert attachment_scan(attachment_id=attachment.pk) == "skipped"

    assert len(clamd.streams) == 1
    assert ActionLog.objects.filter(action="attachment.scanned").count() == 1


def test_the_sweep_queues_only_attachments_pending_for_a_while(alice):
    from datetime import timedelta

    from django.utils import timezone

    old = attach(TicketFactory(customer=alice), scan_status="pending")
    Attachment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    attach(TicketFactory(customer=alice), scan_status="pending")  # just made: its task runs
    attach(TicketFactory(customer=alice))  # clean

    assert attachments_scan_requeue_due() == 1


# What the scanner below does while it scans: an agent's merge, in the worker's gap between
# reading the file and recording the verdict.
_during_scan: list = []


class _MergingScanner:
    name = "merging"

    def scan(self, content: bytes) -> ScanVerdict:
        for act in _during_scan:
            act()
        return ScanVerdict(clean=True)


def merging_scanner() -> _MergingScanner:
    return _MergingScanner()


def test_the_scan_is_audited_on_the_ticket_the_file_is_on_when_the_verdict_is_recorded(
    settings, alice, agent
):
    # given a file pending on a duplicate of Alice's question
    survivor = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    duplicate = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    attachment = attach(duplicate, scan_status="pending")
    settings.ATTACHMENT_SCANNER = f"{__name__}.merging_scanner"
    _during_scan[:] = [lambda: services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)]

    # when an agent merges the duplicate while the file is being scanned
    try:
        assert attachment_scan(attachment_id=attachment.pk) == "clean"
    finally:
        _during_scan.clear()

    # then the verdict is on the survivor's trail, where the file now is, after the merge
    row = ActionLog.objects.get(action="attachment.scanned")
    assert row.ticket_id == survivor.pk
    merged_in = ActionLog.objects.get(action="ticket.merged_in")
    assert row.sequence > merged_in.sequence
    assert audit_verify().ok


@postgresql_only("a merge and a scan at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_a_verdict_waiting_on_a_merge_in_flight_is_audited_where_the_merge_put_the_file(
    settings, alice, agent, monkeypatch
):
    # given a file pending on a duplicate of Alice's question
    survivor = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    duplicate = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    attachment = attach(duplicate, scan_status="pending")
    moved = threading.Event()
    # the scan gives its verdict once the merge has moved the file, not yet committed
    settings.ATTACHMENT_SCANNER = f"{__name__}.merging_scanner"
    _during_scan[:] = [lambda: moved.wait(10)]
    # and the merge commits only once the scan waits on the duplicate's lock to record it
    index_update = merge_service.ticket_search_documents_update

    def moved_then_wait_for_the_scan(**kwargs):
        index_update(**kwargs)
        moved.set()
        with connections["default"].cursor() as cursor:
            for _ in range(100):
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the scan never waited on the merge")

    monkeypatch.setattr(
        merge_service, "ticket_search_documents_update", moved_then_wait_for_the_scan
    )
    errors: list[Exception] = []

    def act(what: str) -> None:
        try:
            if what == "merge":
                services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)
            else:
                attachment_scan(attachment_id=attachment.pk)
        except Exception as exc:
            errors.append(exc)

    # when the two run at once
    try:
        run_at_once(act, [("merge",), ("scan",)])
    finally:
        _during_scan.clear()

    # then the verdict is on the survivor's trail, after the merge
    assert errors == []
    row = ActionLog.objects.get(action="attachment.scanned")
    assert row.ticket_id == survivor.pk
    assert row.sequence > ActionLog.objects.get(action="ticket.merged_in").sequence
    assert audit_verify().ok
