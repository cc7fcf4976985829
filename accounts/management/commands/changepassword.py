import getpass
from typing import Any

from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError

from accounts.services import password_set_refusal, user_password_set

ACTOR = "command:changepassword"
TRIES = 3


def _typed(prompt: str) -> str:
    password = getpass.getpass(prompt=prompt)
    if not password:
        raise CommandError("aborted")
    return password


class Command(changepassword.Command):
    """Django's changepassword, through the one service that sets a password.

    So a password set from the shell is held to the rules the admin is (a customer's password is
    theirs alone to set), takes back the login's API tokens and other sessions, and is written on
    the audit chain.
    """

    def handle(self, *args: Any, **options: Any) -> str:
        username = options["username"] or getpass.getuser()
        user = User.objects.using(options["database"]).filter(username=username).first()
        if user is None:
            raise CommandError(f"user '{username}' does not exist")
        refusal = password_set_refusal(user=user, actor=ACTOR, password="")
        if refusal:
            raise CommandError(refusal)
        self.stdout.write(f"Changing password for user '{user}'")
        for _ in range(TRIES):
            password = _typed("Password: ")
            if password != _typed("Password (again): "):
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as error:
                self.stderr.write("\n".join(error.messages))
                continue
            user_password_set(user=user, password=password, actor=ACTOR, how="reset")
            return f"Password changed successfully for user '{user}'"
        raise CommandError(f"Aborting password change for user '{user}' after {TRIES} attempts")
