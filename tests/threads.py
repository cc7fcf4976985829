"""Running work in threads at once, each on its own database connection (race tests)."""

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
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


def meet_after(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, parties: int = 2, timeout: float = 2
) -> None:
    """Make `owner.name`, once it returns, wait (up to `timeout`) for the other threads to have
    returned from it too: unless a lock queues them, every thread takes that step before any goes
    on. A thread held by a lock instead breaks the wait: the intended order.
    """
    met = threading.Barrier(parties, timeout=timeout)
    step = getattr(owner, name)

    def step_then_meet(*args: Any, **kwargs: Any) -> Any:
        result = step(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            met.wait()
        return result

    monkeypatch.setattr(owner, name, step_then_meet)
