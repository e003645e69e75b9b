"""Progress output of long builds: every line carries the time since the build started."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Progress:
    """Prints ``[  12.3s] message`` lines through ``echo``."""

    def __init__(self, echo: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic) -> None:
        self._echo = echo
        self._clock = clock
        self._start = clock()

    def elapsed(self) -> float:
        """Seconds since this progress began."""
        return self._clock() - self._start

    def note(self, message: str) -> None:
        """Print one line, stamped with the elapsed time."""
        self._echo(f"[{self.elapsed():7.1f}s] {message}")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Announce ``title``, run the block, then say how long it took."""
        began = self._clock()
        self.note(f"{title} ...")
        yield
        self.note(f"{title}: done in {self._clock() - began:.1f}s")
