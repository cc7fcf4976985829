"""`manage.py check --deploy`: the production problems that DEBUG=0 refuses to start with."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import connections

from helpdesk.deploy import deploy_problems

DEPLOY_SETTINGS = (
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "DATABASES",
    "REDIS_URL",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "ANYMAIL",
    "OPENSRS_URL",
    "OPENSRS_USERNAME",
    "OPENSRS_KEY",
    "SITE_URL",
    "ALLOWED_HOSTS",
)


@checks.register(checks.Tags.security, deploy=True)
def production_configuration(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    config = {name: getattr(settings, name) for name in DEPLOY_SETTINGS}
    return [checks.Error(problem, id="helpdesk.E001") for problem in deploy_problems(config)]


@checks.register(checks.Tags.urls)
def webhooks_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The mounted ESP's webhook views can be built (their signing keys and the like are set)."""
    from helpdesk.webhooks import webhook_problems

    return [checks.Error(p, id="helpdesk.E002") for p in webhook_problems(settings.ANYMAIL_ESP)]


@checks.register(checks.Tags.database)
def autovacuum_on(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """PostgreSQL's autovacuum is on: it keeps the statistics the staff search plans from.

    Run by `migrate` and by `check --database default` (README, Production, step 2).
    """
    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            (value,) = cursor.fetchone()
        if value != "on":
            warnings.append(
                checks.Warning(
                    f"autovacuum is {value} on database {alias!r}: the statistics the staff "
                    "search chooses its plans from go stale, dead rows pile up, and each read "
                    "of a search index scans its pending list (up to 512 kB) whole.",
                    hint="Turn autovacuum on (PostgreSQL's default), or VACUUM the tickets "
                    "tables daily.",
                    id="helpdesk.W001",
                )
            )
    return warnings


@checks.register(checks.Tags.database, checks.Tags.security)
def customer_logins_without_staff_roles(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """No customer's portal login holds a staff flag, role or permission.

    The rule refuses them on every path that writes a login (accounts.services
    .login_roles_refusal); one given them before it keeps them, unused (accounts.selectors
    .is_staff_login), until an administrator takes them off. Run by `migrate` and by
    `check --database default` (README, Production, step 2); the tables may not exist yet.
    """
    from accounts.selectors import customer_logins_with_staff_roles

    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        tables = set(connections[alias].introspection.table_names())
        if not {"auth_user", "accounts_customer"} <= tables:
            continue
        for login in customer_logins_with_staff_roles(using=alias):
            warnings.append(
                checks.Warning(
                    f"The login {login.username!r} is the portal login of customer "
                    f"{login.customer} and holds {', '.join(login.holds)} (database {alias!r}): "
                    "a customer's login holds no staff status, superuser status, staff role or "
                    "permission. It is not let into the admin, the staff pages or the staff API.",
                    hint="In the admin (Users), take the staff and superuser status, the groups "
                    "and the permissions off this login; give the person a staff login of "
                    "their own if they work tickets.",
                    id="helpdesk.W002",
                )
            )
    return warnings


# The model fields an address enters by (a customer's email on record, a ticket's contact),
# as "app_label.Model.field". Each must hold the one rule for addresses.
ADDRESS_FIELDS = ("accounts.Customer.email", "tickets.Ticket.contact_email")


@checks.register(checks.Tags.models)
def address_fields_use_the_rule(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every field of ADDRESS_FIELDS validates with `validate_address` (helpdesk.validators)."""
    from django.apps import apps

    from helpdesk.validators import validate_address

    errors: list[checks.CheckMessage] = []
    for name in ADDRESS_FIELDS:
        label, model_name, field_name = name.split(".")
        field = apps.get_model(label, model_name)._meta.get_field(field_name)
        if validate_address not in getattr(field, "validators", []):
            errors.append(
                checks.Error(
                    f"{name} does not validate with helpdesk.validators.validate_address, the "
                    "one rule for email addresses.",
                    id="helpdesk.E003",
                )
            )
    return errors
