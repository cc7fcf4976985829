from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    verbose_name = "Help desk"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        # checks registers the deploy checks; health records the start of the process, so it is
        # imported now rather than at its first use.
        from helpdesk import checks, health  # noqa: F401

        if not settings.DEBUG and not settings.TESTING:
            # The rest of the fail-fast of helpdesk.settings: what only anymail can tell.
            from helpdesk.webhooks import webhook_problems

            if problems := webhook_problems(settings.ANYMAIL_ESP):
                raise ImproperlyConfigured("\n".join(problems))
