from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from domains.models import Domain


class DomainQuerySet(models.QuerySet["Domain"]):
    def bouncing(self) -> "DomainQuerySet":
        return self.filter(registrant_email_status="bouncing")
