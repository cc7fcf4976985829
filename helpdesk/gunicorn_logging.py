"""Gunicorn's access log (`--logger-class`): no liveness probes, no tokens of mailed links."""

import re
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types

# helpdesk.middleware.HEALTHZ_PATH; not imported, as gunicorn loads this before Django is set up.
HEALTHZ_PATH = "/healthz"
# The pages whose address carries a link's token (tickets/urls.py, accounts/urls.py).
# The token is a live link until it is used or expires: whoever reads the log could confirm a
# request as its owner, freeze an account, read a request's page or reset a password with it.
_TOKEN_IN_PATH = re.compile(
    r"^(/(?:verify|not-me|track|unsubscribe|satisfaction|requests/registration)/"
    r"|/accounts/password-reset/[^/]+/)(?!done/|set-password/)[^/?]+"
)


def token_redacted(path: str) -> str:
    """`path` with the token of a mailed link replaced by `[token]`."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", path, count=1)


class AccessLogWithoutProbes(Logger):
    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if environ.get("PATH_INFO") == HEALTHZ_PATH:
            return
        environ = {
            **environ,
            "RAW_URI": token_redacted(environ.get("RAW_URI", "")),
            "PATH_INFO": token_redacted(environ.get("PATH_INFO", "")),
        }
        super().access(resp, req, environ, request_time)
