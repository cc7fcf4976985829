from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and staff"

    def ready(self) -> None:
        # Connects the receivers (their decorators run on import).
        from accounts import receivers  # noqa: F401
