"""Terminal: `status` exit codes on a real local cluster, `status --watch` and the progress bar of `up`
in a real pseudo-terminal, plain lines when not on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artm_compose.dashboard.terminal import (CLEAR_SCREEN, DEGRADED, DOWN, HEALTHY, TRAINING_FAILED, ProgressEcho,
                                             progress_line, status_exit_code)
from artm_compose.processes import ProcessRecord

from support.ports import free_port_block, requires_redis
from support.engine import dpkg_corpus

SCRIPT = Path(sys.executable).with_name("artm-compose")
WAIT = 120.0


def _document(redis=(2, 2), executors=(0, 0), master=(0, 0), healthy=True, status="running", training=None):
    counts = {"redis": dict(zip(("alive", "total"), redis)), "executor": dict(zip(("alive", "total"), executors)),
              "master": dict(zip(("alive", "total"), master))}
    return {"counts": counts, "healthy": healthy, "status": status, "training": training}


def test_status_exit_code_cases():
    assert status_exit_code(_document()) == HEALTHY
    assert status_exit_code(_document(executors=(4, 4), master=(1, 1), training={"state": "iterations"})) == HEALTHY
    assert status_exit_code(_document(executors=(0, 4), master=(0, 1), status="finished",
                                      training={"state": "done"})) == HEALTHY
    assert status_exit_code(_document(executors=(3, 4), master=(1, 1))) == DEGRADED
    assert status_exit_code(_document(redis=(1, 2), healthy=False)) == DEGRADED
    assert status_exit_code(_document(healthy=False)) == DEGRADED
    assert status_exit_code(_document(redis=(0, 2), healthy=False, status="stopped")) == DOWN
    assert status_exit_code(_document(executors=(0, 4), master=(0, 1), training={"state": "failed"})) == TRAINING_FAILED
    assert status_exit_code(_document(status="training stopped")) == TRAINING_FAILED


def test_progress_line_sums_the_executors_documents():
    progress = {"state": "iterations", "phase": "e-step", "pass": 3, "passes": 10,
                "executors": {"0": {"documents": 100, "documents_done": 50}, "1": {"documents": 300, "documents_done": 50},
                              "2": None}}
    line = progress_line(progress, width=200)
    assert line.startswith("pass 3/10 [#######.......................] 100/400 documents, e-step"), line
    assert len(progress_line(progress, width=20)) == 19


def test_progress_echo_off_a_terminal_prints_plain_lines():
    stream = io.StringIO()
    with ProgressEcho(stream, probe=lambda: pytest.fail("a plain stream must not be probed"), interval=0.01) as echo:
        echo("pass 1: perplexity 10")
        time.sleep(0.05)
        echo("pass 2: perplexity 9")
    assert stream.getvalue() == "pass 1: perplexity 10\npass 2: perplexity 9\n"


def _cli(*argv: str, timeout: float = WAIT) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, timeout=timeout)


def _wait_code(state: Path, wanted: int, what: str) -> subprocess.CompletedProcess:
    deadline = time.monotonic() + WAIT
    while True:
        result = _cli("status", "--json", "--state-dir", str(state))
        if result.returncode == wanted:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"status never exited {wanted} ({what}); last {result.returncode}: {result.stdout}")
        time.sleep(0.5)


def _read_until(fd: int, until, timeout: float) -> str:
    """Read a pseudo-terminal or a pipe until ``until(text)`` holds; bounded by ``timeout``."""
    text = ""
    deadline = time.monotonic() + timeout
    while not until(text):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s; the terminal showed:\n{text[-3000:]}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                text += os.read(fd, 65536).decode(errors="replace")
            except OSError:
                break
    return text


def _in_pty(argv: list[str]) -> tuple[subprocess.Popen, int]:
    main, child = pty.openpty()
    process = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, start_new_session=True)
    os.close(child)
    return process, main


@pytest.mark.integration
@requires_redis
def test_status_exit_codes_and_watch_on_a_real_cluster(tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    state = tmp_path / "state"
    common = ["--state-dir", str(state)]
    up = ["up", "--runtime", "local", "--name", f"codes{os.getpid()}", "--nodes", "2", "--executors-per-node", "2",
          "--base-port", str(free_port_block(2)), "--data", str(corpus), "--topics", "4", "--iterations", "100000",
          "--max-restarts", "0", *common]  # a lost executor stops the run
    try:
        started = _cli(*up, "-d")
        assert started.returncode == 0, started.stderr
        assert _cli("status", *common).returncode == HEALTHY

        # --watch on a terminal redraws in place; Ctrl-C ends it with the last code.
        process, terminal = _in_pty([str(SCRIPT), "status", "--watch", "--interval", "0.3", *common])
        try:
            shown = _read_until(terminal, lambda text: text.count(CLEAR_SCREEN) >= 2, WAIT)
            assert "redis nodes 2/2 up" in shown and "(Ctrl-C to stop)" in shown
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == HEALTHY
        finally:
            os.close(terminal)
            if process.poll() is None:
                process.kill()
        # ... and off a terminal appends plain looks.
        piped = subprocess.Popen([str(SCRIPT), "status", "--watch", "--interval", "0.3", *common],
                                 stdout=subprocess.PIPE)
        out = _read_until(piped.stdout.fileno(), lambda text: text.count("--- ") >= 2, WAIT)
        piped.send_signal(signal.SIGINT)
        piped.communicate(timeout=30)
        assert "redis nodes 2/2 up" in out and "\x1b" not in out

        executor = ProcessRecord.load(state / "pids" / "executor-1.json")
        os.kill(executor.pid, signal.SIGKILL)
        failed = _wait_code(state, TRAINING_FAILED, "the master to fail the run after an executor died")
        assert json.loads(failed.stdout)["training"]["state"] == "failed"

        redis = ProcessRecord.load(state / "pids" / "redis-1.json")
        os.kill(redis.pid, signal.SIGKILL)
        _wait_code(state, DEGRADED, "a Redis node down")
    finally:
        _cli("down", *common)
    assert _cli("status", *common).returncode == DOWN
    assert _cli("status", "--state-dir", str(tmp_path / "nothing")).returncode == 2


@pytest.mark.integration
@requires_redis
def test_up_on_a_terminal_shows_a_progress_bar_and_the_per_pass_lines(tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    state = tmp_path / "state"
    argv = [str(SCRIPT), "up", "--runtime", "local", "--name", f"bar{os.getpid()}", "--nodes", "1",
            "--executors-per-node", "2", "--base-port", str(free_port_block(1)), "--data", str(corpus),
            "--topics", "4", "--iterations", "100000", "--state-dir", str(state)]
    process, terminal = _in_pty(argv)
    try:
        shown = _read_until(terminal, lambda text: "documents, " in text and "pass 3: perplexity" in text, WAIT)
        bar = next(line for line in shown.replace("\r", "\n").splitlines() if "documents, " in line)
        assert "[" in bar and "]" in bar and bar.lstrip("\x1b[K").startswith("pass "), bar
        process.send_signal(signal.SIGINT)
        rest = _read_until(terminal, lambda text: "stopped following" in text, WAIT)
        assert "stopped following" in rest
        process.wait(timeout=60)
    finally:
        os.close(terminal)
        if process.poll() is None:
            process.kill()
        _cli("down", "--state-dir", str(state))
