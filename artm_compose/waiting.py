"""Bounded waits: poll a check until it gives a value or the time is up, then say what was awaited.

Every wait in artm-compose is bounded; this module is the one loop they share, so that a timeout always
names what was awaited, the timeout and the last state seen, and no loop sleeps past its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from artm_compose.errors import WaitTimeout

T = TypeVar("T")


def poll_until(check: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T | None:
    """``check()``'s first value that is neither None nor False, polled every ``interval`` seconds; None
    if there is none within ``timeout`` seconds.

    ``check`` runs at least once, and once more at the deadline (the last sleep is cut short to end
    there), so a condition met just before the deadline is not missed. ``check`` may raise to stop at
    once (a process that exited will not start listening).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(interval, remaining))


def wait_until(check: Callable[[], T | None], timeout: float, what: str, *, interval: float = 0.2,
               describe: Callable[[], str] | None = None, error: type[WaitTimeout] = WaitTimeout) -> T:
    """``check()``'s first value that is neither None nor False, polled as ``poll_until`` does.

    On timeout raises ``error`` saying ``what`` was awaited (a noun phrase: "redis-server to open its
    port"), the timeout and, if ``describe`` is given, the last state seen: ``describe`` runs once, after
    the last check, so it can report what that check recorded (pending members, the last error).
    """
    value = poll_until(check, timeout, interval)
    if value is not None:
        return value
    state = f"; last seen: {describe()}" if describe is not None else ""
    raise error(f"timed out after {timeout:g} s waiting for {what}{state}")
