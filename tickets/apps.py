from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets"

    def ready(self) -> None:
        # Connect the anymail tracking and inbound receivers.
        from tickets import inbound  # noqa: F401
