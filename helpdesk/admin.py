"""What the Django admin may do with customer data: look, never write."""

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """View-only admin for a model (or inline) whose writes belong to the services.

    Every change to customer data goes through a service that validates it and writes the audit
    log; the admin form would do neither. So nobody, superusers included, may add, change or
    delete these rows here: the change page renders as a read-only view, a POST to it is
    refused with 403, and the delete action disappears. Django's own view permission still
    decides who may look.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # `obj` is passed to inlines only; ModelAdmin calls this with the request alone.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
