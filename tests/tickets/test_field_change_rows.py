"""A change request's rows read the same on the portal, the staff pages and the verify page."""

import re

import pytest
from django.conf import settings

from tests.tickets.verification_helpers import anonymous_change, link_token, verification_mail
from tickets.lookalikes import MIXED_ALPHABETS
from tickets.models import FieldChange
from tickets.selectors.field_changes import ChangeRow, field_change_rows

CHANGES = {"phone": "+60 12-345 6789", "city": "Petaling Jaya", "full_name": "\u0410lice Tan"}


def _rows(page: str) -> list[tuple[str, str]]:
    """(label, new value) of each row of the page's "Requested changes" table.

    Staff pages add a badge to a look-alike value: the value is the text before it.
    """
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    table = re.sub(r'<span class="badge badge-lookalike".*?</span>', "", table, flags=re.S)
    return [
        (label, re.sub(r"<[^>]+>", "", cells[1]).strip())
        for label, rest in re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', table, re.S)
        for cells in [re.findall(r"<td[^>]*>(.*?)</td>", rest, re.S)]
    ]


def test_a_row_keeps_the_label_msgid_and_marks_a_lookalike():
    # given
    change = FieldChange(field="full_name", old_value="Alice Tan", new_value="\u0410lice Tan")

    # when
    [row] = field_change_rows([change])

    # then
    assert row == ChangeRow(
        field="full_name",
        label="Full name",
        old="Alice Tan",
        new="\u0410lice Tan",
        applied_at=None,
        lookalike=MIXED_ALPHABETS,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "labels"),
    [("en", ["Full name", "Phone", "City"]), ("ms", ["Nama penuh", "Telefon", "Bandar"])],
)
def test_portal_staff_and_verify_pages_show_the_same_rows(
    alice, alice_client, supervisor_client, client, language, labels
):
    # given a request awaiting the owner's confirmation
    ticket = anonymous_change("alice@example.test", CHANGES, client_key="10.0.0.1")
    token = link_token(verification_mail(ticket))
    for reader in (alice_client, supervisor_client, client):
        reader.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    # when
    portal = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    staff = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    verify = client.get(f"/verify/{token}/").content.decode()

    # then
    shown = _rows(portal)
    assert sorted(label for label, _new in shown) == sorted(labels)
    assert shown == _rows(staff) == _rows(verify)
