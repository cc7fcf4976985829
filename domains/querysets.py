from django.db import models


class DomainQuerySet(models.QuerySet):
    def bouncing(self) -> "DomainQuerySet":
        return self.filter(registrant_email_status="bouncing")
