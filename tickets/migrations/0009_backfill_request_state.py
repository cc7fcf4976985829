"""Fill the new state rows of existing tickets, once, from what the audit log recorded.

Until now the resend flow's stage and tries and an anonymous opt-out's lists lived only in
audit rows. From here on the flows read the models; this reads the log one last time.
"""

from django.db import migrations

_RESEND_OUTCOMES = {
    "resend.sent": "sent",
    "resend.unknown_domain": "unknown_domain",
    "resend.referred": "referred",
    "resend.gave_up": "to_staff",
    "resend.outcome_unknown": "to_staff",
    "resend.opensrs_auth_error": "to_staff",
    "resend.opensrs_refused": "to_staff",
}


def backfill(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    ActionLog = apps.get_model("tickets", "ActionLog")
    PasswordResend = apps.get_model("tickets", "PasswordResend")
    AnonymousRequest = apps.get_model("tickets", "AnonymousRequest")

    resends = Ticket.objects.filter(kind="resend_password", resend__isnull=True).order_by("pk")
    for ticket in resends.iterator(chunk_size=500):
        stage, asked_at, attempts, outcome = "pending", None, 0, ""
        rows = ActionLog.objects.filter(ticket_id=ticket.pk).order_by("sequence")
        for action, details, created_at in rows.values_list("action", "details", "created_at"):
            if action == "opensrs.send_password":
                stage = str((details or {}).get("stage") or stage)
                if stage == "started" and asked_at is None:
                    asked_at = created_at
            elif action == "resend.opensrs_error":
                attempts += 1
            elif action in _RESEND_OUTCOMES and not outcome:
                outcome = _RESEND_OUTCOMES[action]
        if not outcome and ticket.status != "new":
            outcome = "to_staff"
        PasswordResend.objects.create(
            ticket_id=ticket.pk,
            domain_name=ticket.requested_domain,
            stage=stage if stage in {"pending", "started", "sent", "not_sent", "unknown"} else "pending",
            attempts=attempts,
            next_try_at=ticket.created_at,
            asked_at=asked_at,
            outcome=outcome,
            created_at=ticket.created_at,
        )

    asked = ActionLog.objects.filter(action="optout.requested", ticket__isnull=False)
    for ticket_id, details in asked.order_by("sequence").values_list("ticket_id", "details"):
        ticket = Ticket.objects.get(pk=ticket_id)
        AnonymousRequest.objects.update_or_create(
            ticket_id=ticket_id,
            defaults={
                "actor": "anonymous",
                "email": ticket.contact_email,
                "lists": list((details or {}).get("lists") or []),
                "processed_at": ticket.created_at,
                "outcome": "link_sent" if ticket.customer_id else "no_record",
                "created_at": ticket.created_at,
            },
        )


def unfill(apps, schema_editor):
    apps.get_model("tickets", "PasswordResend").objects.all().delete()
    apps.get_model("tickets", "AnonymousRequest").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("tickets", "0008_resend_and_anonymous_request_state")]

    operations = [migrations.RunPython(backfill, unfill)]
