"""Gunicorn's access log without the load balancer's liveness probes (`--logger-class`)."""

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types

# helpdesk.middleware.HEALTHZ_PATH; not imported, as gunicorn loads this before Django is set up.
HEALTHZ_PATH = "/healthz"


class AccessLogWithoutProbes(Logger):
    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if environ.get("PATH_INFO") == HEALTHZ_PATH:
            return
        super().access(resp, req, environ, request_time)
