"""API authentication by named, hashed, expiring tokens (django-rest-knox)."""

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiToken
from accounts.selectors import customer_login_allowed

INVALID_TOKEN = "Invalid token."  # noqa: S105 - knox's message, not a secret
# How stale `last_used_at` may get: one write a minute per token at most, not one a request.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`; the key is looked up by its digest, never stored."""

    def authenticate_credentials(self, token: bytes) -> tuple[User, ApiToken]:
        # Knox decodes the key as UTF-8 and would fail with a 500 on other bytes.
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID_TOKEN) from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token: ApiToken) -> bool:
        """Whether this token has expired (then it is deleted).

        Knox also reads all of the user's other tokens here, to delete the expired ones: a
        query on every request for rows that can do nothing (an expired token is refused).
        """
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token: ApiToken) -> tuple[User, ApiToken]:
        user, token = super().validate_user(auth_token)
        # The sign-in rule of the login backend: a freeze revokes the tokens, this refuses any
        # of a suspended or closed account all the same. The customer record it reads is the
        # one a customer's request then uses.
        if not customer_login_allowed(user):
            raise AuthenticationFailed(INVALID_TOKEN)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI schema, under the name DRF's token scheme had (`tokenAuth`)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        prefix = self.target.authenticate_header(None)  # "Token"
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=prefix)
