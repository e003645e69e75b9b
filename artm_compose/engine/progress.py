"""The master's pass-by-pass display: a progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

BAR_WIDTH = 30


class ProgressLine:
    """``show`` redraws the bar of the current pass (terminals only); ``done`` prints a pass's line."""

    def __init__(self, passes: int, stream: TextIO | None = None):
        self.passes = passes
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._drawn = False

    def show(self, index: int, phase: str) -> None:
        """Pass ``index`` (1-based within this run) is in ``phase``."""
        if not self.tty or self.passes <= 0:
            return
        filled = BAR_WIDTH * min(self.passes, index - 1) // self.passes
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] pass {index}/{self.passes} {phase}"
        width = shutil.get_terminal_size((80, 20)).columns - 1
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            width = shutil.get_terminal_size((80, 20)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()
            self._drawn = False

    def done(self, line: str) -> None:
        self.clear()
        print(line, file=self.stream, flush=True)
