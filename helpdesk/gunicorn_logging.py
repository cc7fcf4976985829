"""Gunicorn's access log (`--logger-class`): no liveness probes, no tokens of mailed links."""

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types

from helpdesk.observability import token_redacted

# helpdesk.middleware.HEALTHZ_PATH; not imported, as gunicorn loads this before Django is set up.
HEALTHZ_PATH = "/healthz"


class AccessLogWithoutProbes(Logger):
    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if environ.get("PATH_INFO") == HEALTHZ_PATH:
            return
        environ = {
            **environ,
            "RAW_URI": token_redacted(environ.get("RAW_URI", "")),
            "PATH_INFO": token_redacted(environ.get("PATH_INFO", "")),
            # The pages of a link ask for their stylesheet or post their form with it as Referer.
            "HTTP_REFERER": token_redacted(environ.get("HTTP_REFERER", "-")),
        }
        super().access(resp, req, environ, request_time)
