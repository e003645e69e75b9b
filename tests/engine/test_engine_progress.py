"""The master's display: a redrawn bar on a terminal, plain lines in logs."""

from __future__ import annotations

import io

from artm_compose.engine.progress import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_and_logs_get_plain_lines():
    terminal = Terminal()
    bar = ProgressLine(4, stream=terminal)
    bar.show(3, "e-step")
    assert "\r[" + "#" * 15 + "." * 15 + "] pass 3/4 e-step" in terminal.getvalue()
    bar.done("pass 3: perplexity 12.5")
    assert terminal.getvalue().endswith("\rpass 3: perplexity 12.5\n")

    log = io.StringIO()
    plain = ProgressLine(4, stream=log)
    plain.show(1, "e-step")
    plain.done("pass 1: perplexity 99.0")
    plain.clear()
    assert log.getvalue() == "pass 1: perplexity 99.0\n"
