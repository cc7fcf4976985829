"""The browser a login's password is changed or reset in keeps a device cookie that counts.

A device cookie ends with the password it was issued under, so the owner's own browser would
hold an outdated one after they change or reset the password there: their first mistyped
password revokes it and counts toward the limit from every client, which guessers may have
filled (often the very reason for the new password), and the owner is locked out with the rest.
"""

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.accounts.conftest import ROOT_PASSWORD as PASSWORD
from tests.accounts.test_login_device_outdated import (
    COOKIE,
    NEW_PASSWORD,
    browser_with,
    device_cookie,
    fill_the_ceiling,
    log_in,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits")]


def change_own_password(owner, root, page):
    if page == "change my password":
        return owner.post(
            "/admin/password_change/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
    return owner.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


@pytest.mark.parametrize("page", ["change my password", "the login's own admin page"])
def test_changing_ones_own_password_in_the_admin_keeps_the_browser_counted(root, page):
    # given: the owner signed in to the admin, and changes the password there
    owner = Client()
    assert log_in("admin", owner, PASSWORD).status_code == 302
    old = owner.cookies[COOKIE].value
    response = change_own_password(owner, root, page)
    assert response.status_code == 302
    root.refresh_from_db()
    assert root.check_password(NEW_PASSWORD)

    # when guessers fill the ceiling, and the owner signs out and mistypes once
    fill_the_ceiling()
    owner.post("/admin/logout/")
    assert log_in("admin", owner, "typo").status_code == 200

    # then the browser still signs in past the ceiling; the copy of the old cookie does not
    assert log_in("admin", owner, NEW_PASSWORD).status_code == 302
    thief = browser_with(old)
    assert [log_in("admin", thief, "guess").status_code for _ in range(2)][1] == 429


def test_resetting_the_password_by_the_link_keeps_the_browser_counted(root):
    # given: the owner's browser holds a device cookie; they reset the password by its link
    owner = browser_with(device_cookie())
    root.refresh_from_db()  # the token is of the login as it stands, its last login included
    uid = urlsafe_base64_encode(force_bytes(root.pk))
    token = default_token_generator.make_token(root)
    form = owner.get(f"/accounts/password-reset/{uid}/{token}/")
    assert form.status_code == 302
    response = owner.post(
        form["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    root.refresh_from_db()
    assert root.check_password(NEW_PASSWORD)

    # when guessers fill the ceiling, and the owner mistypes the new password once
    fill_the_ceiling()
    assert log_in("portal", owner, "typo").status_code == 200

    # then that browser still signs in
    assert log_in("portal", owner, NEW_PASSWORD).status_code == 302
