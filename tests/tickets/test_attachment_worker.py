"""Integration: a real Celery worker scans a reply's files with clamd, then mails the reply."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from helpdesk.celery import app as celery_app
from tests.factories import TicketFactory
from tests.tickets.fake_clamd import EICAR, FakeClamd
from tests.tickets.test_attachment_upload import PDF
from tests.tickets.test_worker import _wait_for
from tickets import services
from tickets.models import Attachment, Message, Notification, Ticket
from tickets.services.attachments import AttachmentUpload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_worker_scans_a_replys_files_and_mails_only_the_clean_one(alice, agent, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    clamd = FakeClamd()
    settings.CLAMD_SOCKET = clamd.path
    celery_app.control.purge()
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            # when an agent replies with a guide and a file clamd knows as malware
            ticket = TicketFactory(customer=alice)
            services.ticket_reply_add(
                ticket=ticket,
                body="The guide is attached.",
                actor=agent,
                author=Message.Author.STAFF,
                channel=Ticket.Channel.STAFF,
                author_user=agent,
                attachments=[
                    AttachmentUpload("guide.pdf", PDF),
                    AttachmentUpload("notes.txt", EICAR),
                ],
            )

            # then the worker scans both and sends the reply with the clean one only
            reply = Notification.objects.get(ticket=ticket, template="ticket_reply")
            assert _wait_for(lambda: Notification.objects.get(pk=reply.pk).status == "sent")
    finally:
        clamd.close()
    verdicts = dict(Attachment.objects.values_list("filename", "scan_status"))
    assert verdicts == {"guide.pdf": "clean", "notes.txt": "infected"}
    assert sorted(clamd.streams) == sorted([PDF, EICAR])
    [email] = mail.outbox
    assert [name for name, _, _ in email.attachments] == ["guide.pdf"]
