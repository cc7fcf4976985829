"""Running work in threads at once, each on its own database connection (race tests)."""

import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.db import close_old_connections, connection


def run_at_once(target: Callable[..., Any], calls: Iterable[tuple], timeout: float = 30) -> None:
    """Call `target(*args)` for each args of `calls`, each in a thread of its own; wait for all."""

    def run(*args: Any) -> None:
        close_old_connections()
        try:
            target(*args)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
