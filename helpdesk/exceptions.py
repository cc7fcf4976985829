import redis.exceptions
from django.db import OperationalError
from django.utils.translation import gettext, gettext_noop

BODY_TOO_LARGE = gettext_noop("The request is larger than the help desk accepts.")

# What the cache client raises when Redis is down or hung (settings give it 1 s timeouts).
CACHE_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

# PostgreSQL rolled the transaction back because another one held the rows it waited for while
# waiting for its own (deadlock_detected), or a serializable one lost (serialization_failure):
# nothing was saved, and the same action again works.
LOCK_RACE_SQLSTATES = frozenset({"40P01", "40001"})
LOCK_RACE_LOST = gettext_noop(
    "Someone else changed this at the same moment, so nothing was saved. Reload the page and "
    "try again."
)


def lost_a_lock_race(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL rolling back one of two transactions that raced for locks."""
    cause = exc.__cause__
    return isinstance(exc, OperationalError) and (
        getattr(cause, "sqlstate", None) in LOCK_RACE_SQLSTATES
    )


class ApplicationError(Exception):
    """A business rule refused the action; interfaces show `message` to the user.

    `message` is translated into the active language when it is one of the catalogue's
    messages (constants marked with gettext_noop); `str(exc)` stays as raised, for logs.
    """

    status_code = 400

    def __init__(self, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = gettext(message) if message else message
        self.extra = extra or {}


class TransitionNotAllowed(ApplicationError):
    """The ticket's state does not allow this action (HTTP 409)."""

    status_code = 409


class StaffForbidden(ApplicationError):
    """The actor's role does not allow this (HTTP 403)."""

    status_code = 403


class StaleVersion(ApplicationError):
    """The change was made against an older version of the record than the current (HTTP 409)."""

    status_code = 409


class RateLimited(ApplicationError):
    """Too many requests for this client or target (HTTP 429)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after


class RetryLater(Exception):
    """A transient failure that changed nothing: the task should run again after `countdown` s.

    The service that raises it counts the tries and gives up by itself; the task only retries.
    """

    def __init__(self, countdown: int, error: str) -> None:
        super().__init__(error)
        self.countdown = countdown
