"""Terminal displays: ``status`` exit codes, ``status --watch`` and the progress bar of ``up``.

Exit codes of ``artm-compose status`` (scripts and CI test them; the most serious case wins):

* 0 healthy: every Redis node up, cluster state ok, all 16384 slots assigned, and no training
  problem (while the master runs every executor is alive; the last run did not fail);
* 1 an unexpected error while looking (e.g. Docker not reachable);
* 2 no cluster in the state directory, or bad options;
* 3 degraded: some Redis node down, slots unassigned, cluster state not ok, or an executor dead
  while the master trains;
* 4 down: no Redis node of the cluster is up (stopped, or never started);
* 5 training failed: the cluster is healthy but the last training run stopped with an error.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

HEALTHY = 0
DEGRADED = 3
DOWN = 4
TRAINING_FAILED = 5
EXIT_CODES_HELP = ("Exit status: 0 healthy; 1 error while looking; 2 no cluster there or bad options; "
                   "3 degraded (a Redis node down, slots missing, or an executor dead while training); "
                   "4 down (no Redis node up); 5 the last training run failed.")
_FAILED_STATUSES = ("failed", "training stopped")
CLEAR_SCREEN = "\x1b[H\x1b[2J"
BAR_WIDTH = 30


def status_exit_code(status: dict[str, Any]) -> int:
    """The exit code of ``status`` for a ``status --json`` document (see the module docstring)."""
    counts = status.get("counts") or {}
    redis_alive = (counts.get("redis") or {}).get("alive", 0)
    if not redis_alive:
        return DOWN
    executors = counts.get("executor") or {}
    master = counts.get("master") or {}
    executor_lost = master.get("alive", 0) > 0 and executors.get("alive", 0) < executors.get("total", 0)
    if not status.get("healthy") or executor_lost:
        return DEGRADED
    training = status.get("training") or {}
    if training.get("state") == "failed" or status.get("status") in _FAILED_STATUSES:
        return TRAINING_FAILED
    return HEALTHY


def watch(render: Callable[[], tuple[str, int]], interval: float, stream: TextIO,
          stop: threading.Event | None = None) -> int:
    """Show ``render()``'s text every ``interval`` seconds until Ctrl-C (or ``stop``); returns the last
    exit code. On a terminal the screen is redrawn in place; otherwise each look is appended with a time."""
    tty = stream.isatty()
    code = HEALTHY
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            text, code = render()
            stamp = datetime.now().strftime("%H:%M:%S")
            if tty:
                stream.write(f"{CLEAR_SCREEN}{text}\n\n{stamp}, every {interval:g} s (Ctrl-C to stop)\n")
            else:
                stream.write(f"--- {stamp}\n{text}\n")
            stream.flush()
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    return code


def progress_line(progress: dict[str, Any], width: int) -> str:
    """One line for the pass in progress: a bar of the documents E-stepped by all executors, or the phase."""
    passes = progress.get("passes")
    number = progress.get("pass") or 0
    beats = [b for b in (progress.get("executors") or {}).values() if b]
    total = sum(int(b.get("documents") or 0) for b in beats)
    done = sum(min(int(b.get("documents_done") or 0), int(b.get("documents") or 0)) for b in beats)
    phase = progress.get("phase") or progress.get("state") or ""
    filled = BAR_WIDTH * done // total if total else 0
    head = f"pass {number}/{passes}" if passes else f"pass {number}"
    line = f"{head} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} documents, {phase}"
    return line[:max(0, width - 1)]


class ProgressEcho:
    """An ``echo`` for ``up`` on a terminal: lines print as usual, and below them a bar shows the pass in
    progress (from ``probe()``, the master's record with the executors' heartbeats), redrawn every
    ``interval`` seconds by a thread. Not on a terminal (or with ``bar=False``) it is plain ``print``."""

    def __init__(self, stream: TextIO, probe: Callable[[], dict[str, Any] | None], interval: float = 0.5,
                 *, bar: bool = True):
        self.stream = stream
        self.probe = probe
        self.interval = interval
        self.active = bar and stream.isatty()
        self._lock = threading.Lock()
        self._bar = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress bar", daemon=True)

    def __enter__(self) -> ProgressEcho:
        if self.active:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            self._clear()
            self._bar = ""
            self.stream.flush()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(line + "\n")
            self._draw()
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                progress = self.probe()
            except Exception:  # noqa: BLE001 - a bar that cannot be drawn must not stop the training's output
                progress = None
            width = shutil.get_terminal_size((80, 20)).columns
            bar = progress_line(progress, width) if progress and progress.get("state") == "iterations" else ""
            with self._lock:
                self._clear()
                self._bar = bar
                self._draw()
                self.stream.flush()

    def _clear(self) -> None:
        if self._bar:
            self.stream.write("\r\x1b[K")

    def _draw(self) -> None:
        if self._bar:
            self.stream.write(self._bar)


def probe_for(state_dir) -> Callable[[], dict[str, Any] | None]:
    """A probe of the training progress of the cluster in ``state_dir`` (None while Redis cannot answer)."""
    from artm_compose.acl import READER_USER
    from artm_compose.engine.protocol import probe_progress
    from artm_compose.record import ClusterRecord
    from artm_compose.state import StateDir, read_password

    state = StateDir.at(state_dir)

    def probe() -> dict[str, Any] | None:
        record = ClusterRecord.load_if_any(state)
        if record is None or record.training is None:
            return None
        return probe_progress(record.addresses, read_password(state.reader_password_file), record.cluster,
                              username=READER_USER, timeout=1.0)

    return probe
